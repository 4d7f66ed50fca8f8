"""The pipeline: classify outcomes, retry, respect rate limits, deliver, settle."""
