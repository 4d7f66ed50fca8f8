"""Crossdock: a self-hosted integration hub for commerce operations."""

__version__ = "0.1.0"
