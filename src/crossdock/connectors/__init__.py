"""Connectors: the code for one vendor's API each. ``http`` is the generic one."""
