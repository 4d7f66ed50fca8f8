"""The ``crossdock`` command line."""
