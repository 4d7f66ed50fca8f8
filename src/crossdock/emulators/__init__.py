"""Emulators: faithful local stand-ins for the systems Crossdock talks to.

Each emulator speaks its vendor's wire format closely enough for the hub's tests, the demo
and go-live rehearsals. :mod:`crossdock.emulators.sink` is the *reference destination*: a
generic record store that deduplicates by idempotency key, records every effect in arrival
order and can be told to fail (status codes, 429, slowness, timeouts, outages).

Submodules are imported on demand (``from crossdock.emulators.sink import SinkState``) so
that importing this package stays cheap.
"""
