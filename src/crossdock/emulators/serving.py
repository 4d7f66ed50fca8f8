"""Serve an ASGI app (an emulator, a test vendor) with uvicorn on a loopback socket,
in a background thread, for tests and in-process rehearsal."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import ASGIApp


def bind(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket (``port=0`` picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def uvicorn_server(
    app: ASGIApp, loop: str = "uvloop", lifespan: Literal["auto", "on", "off"] = "off"
) -> Any:
    """A quiet, fast uvicorn server for ``app``."""
    import uvicorn

    config = uvicorn.Config(
        app,
        loop=loop,
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan=lifespan,
        server_header=False,
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    return uvicorn.Server(config)


@dataclass
class Serving:
    """A running server: its ``url``, ``port``, uvicorn ``server`` and ``thread``."""

    url: str
    port: int
    server: Any
    thread: threading.Thread


@contextlib.contextmanager
def serving(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    lifespan: Literal["auto", "on", "off"] = "off",
) -> Iterator[Serving]:
    """Serve ``app`` for the ``with`` block; stop and join the thread on exit."""
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    server = uvicorn_server(app, lifespan=lifespan)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"serve:{actual}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the server did not start on {host}:{actual}")
        time.sleep(0.005)
    shown = f"[{host}]" if ":" in host else host
    try:
        yield Serving(f"http://{shown}:{actual}", actual, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
