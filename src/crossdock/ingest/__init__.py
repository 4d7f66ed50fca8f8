"""Inbound events: webhook signatures, the webhook receiver, polling sources with cursors."""
