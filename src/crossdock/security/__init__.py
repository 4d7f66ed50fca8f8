"""Secrets stay secret: credential encryption at rest, API keys, and redaction."""
