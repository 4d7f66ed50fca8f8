"""``crossdock alerts``: list the rules and their state, send a test notification through
every channel, make a webhook signing secret."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

__all__ = ["alerts_app", "send_test_notifications"]

alerts_app = typer.Typer(help="Alert rules and their notification channels.", no_args_is_help=True)

_ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project", "-p", help="Project folder (with crossdock.yaml).", envvar="CROSSDOCK_PROJECT"
    ),
]
_WorkspaceOpt = Annotated[
    str | None, typer.Option("--workspace", "-w", help="Workspace (default: all).")
]


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _workspaces(proj: Any, workspace: str | None) -> list[Any]:
    from crossdock.cli.main import fail

    spaces = [ws for ws in proj.workspaces.values() if workspace in (None, ws.id)]
    if workspace is not None and not spaces:
        raise fail(f"unknown workspace '{workspace}': expected one of {', '.join(proj.workspaces)}")
    return spaces


@alerts_app.command("list")
def alerts_list(project: _ProjectOpt = Path("."), workspace: _WorkspaceOpt = None) -> None:
    """The alert rules of the project and the state of each (firing or ok, since when)."""
    from crossdock.alerts.notify import format_value
    from crossdock.alerts.rules import threshold_of
    from crossdock.alerts.store import alert_states_for
    from crossdock.cli.main import _open, console, fail

    db, _box, proj = _open(project)
    if proj is None:
        db.close()
        raise fail("no crossdock.yaml here. Run 'crossdock init' to create a project.")
    t = Table("workspace", "rule", "when", "subject", "state", "value", "threshold", "since")
    rules = 0
    try:
        for ws in _workspaces(proj, workspace):
            if ws.alerts is None:
                continue
            states = db.read_sync(functools.partial(alert_states_for, workspace=ws.id))
            for rule in ws.alerts.rules:
                rules += 1
                mine = [s for s in states if s["rule"] == rule.name]
                threshold = format_value(rule.when, threshold_of(rule))
                if not mine:
                    t.add_row(
                        ws.id, rule.name, rule.when, "-", "not evaluated yet", "-", threshold, "-"
                    )
                for s in mine:
                    state = "[red]firing[/red]" if s["state"] == "firing" else "[green]ok[/green]"
                    t.add_row(
                        ws.id,
                        rule.name,
                        rule.when,
                        s["subject"] or "-",
                        state,
                        format_value(rule.when, s["value"]),
                        threshold,
                        _when(s["since"]),
                    )
    finally:
        db.close()
    if not rules:
        console.print("No alert rules: add 'alerts:' to a workspace in crossdock.yaml.")
        return
    console.print(t)


async def send_test_notifications(
    proj: Any, workspace: str | None = None
) -> list[tuple[str, str, str]]:
    """Send an ``alert.test`` through every channel of the project's workspaces;
    returns ``(workspace, channel, "ok" or the reason it failed)``."""
    import httpx

    from crossdock.alerts.notify import Notice, SendError, message_id, send
    from crossdock.security.redact import Redactor

    out: list[tuple[str, str, str]] = []
    now = time.time()
    async with httpx.AsyncClient(follow_redirects=False) as client:
        for ws in proj.workspaces.values():
            if workspace not in (None, ws.id) or ws.alerts is None:
                continue
            red = Redactor(ws.alerts.secret_values())
            for name, channel in ws.alerts.channels.items():
                notice = Notice(
                    type="alert.test",
                    workspace=ws.id,
                    rule="test",
                    when="test",
                    subject="",
                    value=None,
                    threshold=None,
                    summary=(
                        f"This is a test alert from Crossdock for workspace '{ws.id}', sent "
                        f"through the channel '{name}'. If you read this, the channel works."
                    ),
                    since=now,
                    at=now,
                    id=message_id("test", ws.id, name, now),
                    console_url=ws.alerts.console_url,
                )
                try:
                    await send(client, channel, notice)
                    out.append((ws.id, name, "ok"))
                except SendError as exc:
                    out.append((ws.id, name, red.value(str(exc))))
                except Exception as exc:
                    out.append((ws.id, name, f"failed ({type(exc).__name__})"))
    return out


@alerts_app.command("test")
def alerts_test(project: _ProjectOpt = Path("."), workspace: _WorkspaceOpt = None) -> None:
    """Send a test notification through every channel and say which worked."""
    from crossdock.cli.main import _load_project, console

    proj = _load_project(project)
    _workspaces(proj, workspace)
    results = asyncio.run(send_test_notifications(proj, workspace))
    if not results:
        console.print("No alert channels: add 'alerts: channels:' to a workspace.")
        return
    t = Table("workspace", "channel", "type", "result")
    failed = 0
    for ws_id, name, result in results:
        channel = proj.workspaces[ws_id].alerts.channels[name]
        ok = result == "ok"
        failed += 0 if ok else 1
        t.add_row(
            ws_id,
            name,
            channel.type,
            "[green]sent[/green]" if ok else f"[red]failed[/red] {result}",
        )
    console.print(t)
    if failed:
        raise typer.Exit(1)


@alerts_app.command("new-secret")
def alerts_new_secret() -> None:
    """Print a new Standard Webhooks signing secret (whsec_...) for a webhook channel;
    give the same secret to the subscriber so it can verify the signatures."""
    print("whsec_" + base64.b64encode(os.urandom(24)).decode("ascii"))
