"""``crossdock sandbox NAME``: run a vendor emulator standalone, for rehearsal."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["emulator_factory", "emulator_options", "register", "run_server"]

console = Console()


def run_server(app: Any, host: str, port: int, **extra: Any) -> None:
    """Serve an ASGI app in the foreground the way every crossdock server runs (uvloop,
    httptools, no access log); Ctrl-C stops it."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        **extra,
    )


def emulator_factory(connector: str) -> Callable[..., Any]:
    """The ``create_app`` of a connector's emulator."""
    from crossdock.sdk.registry import get_connector, load_object

    cls = get_connector(connector)
    if not cls.emulator:
        raise ValueError(f"connector '{connector}' ships no emulator")
    factory = load_object(cls.emulator)
    assert callable(factory)
    return factory


def _convert(name: str, raw: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw.lower() in ("none", "null", ""):
            return None
        kind = args[0] if args else str
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"option '{name}' expects true or false, got '{raw}'")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"option '{name}' expects a number, got '{raw}'") from None
    return raw


def emulator_options(factory: Callable[..., Any], pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs converted by the factory's annotations; clear errors."""
    hints = typing.get_type_hints(factory)
    params = inspect.signature(factory).parameters
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"'{pair}' is not key=value")
        if key not in params:
            known = ", ".join(sorted(p for p in params if p != "self"))
            raise ValueError(f"unknown option '{key}' (options: {known})")
        out[key] = _convert(key, value, hints.get(key, str))
    return out


def _describe_options(factory: Callable[..., Any]) -> str:
    params = inspect.signature(factory).parameters
    return ", ".join(f"{n}={p.default!r}" for n, p in params.items())


def register(sandbox_app: typer.Typer) -> None:
    """Add ``crossdock sandbox NAME`` for every installed connector."""
    from crossdock.sdk.registry import available

    # Built-in and installed (entry point) connectors; an emulator-less one says so.
    for name in available():
        _add(sandbox_app, name)


def _add(sandbox_app: typer.Typer, name: str) -> None:
    def command(
        host: Annotated[str, typer.Option(help="Address.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port.")] = 8100,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Emulator option as key=value (repeatable)."),
        ] = None,
    ) -> None:
        try:
            factory = emulator_factory(name)
            options = emulator_options(factory, set_ or [])
        except (ValueError, ImportError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        app = factory(**options)
        console.print(
            f"{name} emulator on http://{host}:{port} (control API under /_emulator/); "
            f"options: {_describe_options(factory)}",
            highlight=False,
        )
        run_server(app, host, port)

    command.__doc__ = f"Run the {name} emulator (see --set for its options)."
    sandbox_app.command(name)(command)
