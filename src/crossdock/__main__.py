"""``python -m crossdock`` is the ``crossdock`` command."""

from crossdock.cli.main import run

run()
