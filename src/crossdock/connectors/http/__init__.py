"""The generic HTTP connector: webhooks in (see ``crossdock.ingest``), requests out."""
