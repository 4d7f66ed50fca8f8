"""A running hub with two merchants and console users, shared by a module's tests, on
SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crossdock.testing.console import ConsoleHub, running_console_hub
from tests.conftest import _pg_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def console_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleHub]:
    """``crossdock serve`` + the sink, with users (see crossdock.testing.console)."""
    workdir = tmp_path_factory.mktemp(f"console-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'hub.db'}"
    else:
        url = _pg_url(request.getfixturevalue("pg_server"))
    with running_console_hub(workdir, url) as hub:
        yield hub
