"""Support for testing Crossdock and rehearsing with it: a throw-away PostgreSQL server,
free ports. Used by the test suite and the benchmark."""
