"""``crossdock connectors`` and ``crossdock connections test``."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["list_connectors", "test_connections"]


def list_connectors(console: Console) -> None:
    """Every installed connector: kind, API version, sunset, what it can do."""
    import httpx  # noqa: F401 - imported for the connectors' clients

    from crossdock.sdk.errors import UnknownConnector
    from crossdock.sdk.registry import available, get_connector

    t = Table("connector", "kind", "API version", "sunset", "emulator", "from")
    t.add_row("http", "generic", "-", "-", "sandbox sink", "built in")
    for name, ref in sorted(available().items()):
        try:
            cls = get_connector(name)
        except (UnknownConnector, ImportError) as exc:
            t.add_row(name, "?", "?", "?", "?", f"[red]{exc}[/red]")
            continue
        days = cls.days_to_sunset()
        if cls.api_sunset is None or days is None:
            sunset = "-"
        elif days < 0:
            sunset = f"[red]{cls.api_sunset} (passed {-days} days ago)[/red]"
        else:
            sunset = f"{cls.api_sunset} (in {days} days)"
            if days < 90:
                sunset = f"[yellow]{sunset}[/yellow]"
        origin = "built in" if ref.startswith("crossdock.") else ref
        emulator = "yes" if cls.emulator else "no"
        t.add_row(name, cls.kind, cls.api_version, sunset, emulator, origin)
    console.print(t)


async def _check(cfg: Any) -> tuple[bool, str]:
    import httpx

    from crossdock.runtime.connectors import instantiate
    from crossdock.sdk.errors import VendorError
    from crossdock.security.redact import Redactor

    async with httpx.AsyncClient(timeout=15) as http:
        red = Redactor(cfg.secret_values())
        try:
            inst = instantiate(cfg, red, http=http)
            return True, await inst.check()
        except VendorError as exc:
            return False, exc.classified.reason + " " + exc.classified.fix
        except NotImplementedError:
            return True, "no check available for this connector"
        except Exception as exc:
            return False, red.text(f"{type(exc).__name__}: {exc}")


def test_connections(console: Console, project: Any, workspace: str | None) -> int:
    """Call every named-connector connection once; print what worked. Returns failures."""
    t = Table("workspace", "connection", "connector", "result")
    failures = 0
    for ws in project.workspaces.values():
        if workspace and ws.id != workspace:
            continue
        for cfg in ws.connections.values():
            if cfg.is_http:
                continue
            ok, text = asyncio.run(_check(cfg))
            failures += 0 if ok else 1
            mark = "[green]ok[/green]" if ok else "[red]failed[/red]"
            t.add_row(ws.id, cfg.name, cfg.connector, f"{mark} {text}")
            cls_warning = _sunset(cfg.connector)
            if cls_warning:
                t.add_row("", "", "", f"[yellow]{cls_warning}[/yellow]")
    console.print(t)
    return failures


def _sunset(connector: str) -> str | None:
    from crossdock.sdk.registry import get_connector

    return get_connector(connector).sunset_warning()
