"""``crossdock replay``: make events' deliveries happen again and watch them finish."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, func, select

from crossdock.api.replay import replay
from crossdock.runtime.loader import load_registry
from crossdock.store.tables import deliveries


def _when(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"'{text}' is not a time: expected ISO 8601, e.g. 2026-11-24T10:00:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def run_replay(
    db: Any,
    box: Any,
    project: Path,
    workspace: str | None,
    event_ids: list[int] | None,
    since: str | None,
    until: str | None,
    flow: str | None,
    wait: bool,
    timeout: float,
    console: Console,
) -> None:
    """Create the replay deliveries, then (with ``wait``) show their progress."""
    registry = load_registry(db, box, project.resolve())
    spaces = [workspace] if workspace else list(registry.workspaces)
    if not spaces:
        raise ValueError("no workspace is configured: run 'crossdock apply' first")
    start_ts = time.time()
    totals = {"events": 0, "deliveries_created": 0, "retried": 0, "unchanged": 0}
    for ws in spaces:
        if ws not in registry.workspaces:
            raise ValueError(
                f"unknown workspace '{ws}': expected one of {sorted(registry.workspaces)}"
            )
        counts = db.write_sync(
            lambda c, ws=ws: replay(
                c,
                ws,
                registry,
                event_ids=event_ids,
                since=_when(since),
                until=_when(until),
                flow=flow,
            )
        )
        for k in totals:
            totals[k] += counts.get(k, 0)
    console.print(
        f"Replay: {totals['events']} event(s); {totals['deliveries_created']} new deliveries, "
        f"{totals['retried']} exception(s) retried, {totals['unchanged']} already under way."
    )
    todo = totals["deliveries_created"] + totals["retried"]
    if not wait or todo == 0:
        return

    def remaining(conn: Connection) -> tuple[int, int]:
        q = select(deliveries.c.state, func.count()).where(deliveries.c.updated_at >= start_ts - 1)
        if workspace:
            q = q.where(deliveries.c.workspace == workspace)
        by: dict[str, int] = dict(conn.execute(q.group_by(deliveries.c.state)).tuples().all())
        return by.get("pending", 0) + by.get("in_progress", 0), by.get("exception", 0)

    with Progress(
        TextColumn("delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replay", total=todo)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left, exc = db.read_sync(remaining)
            bar.update(task, completed=max(0, todo - left))
            if left == 0:
                break
            time.sleep(0.5)
        else:
            console.print(
                "[yellow]Still delivering; is 'crossdock serve' (or a worker) running?[/yellow]"
            )
            return
    if exc:
        console.print(
            f"[yellow]{exc} ended as exceptions: see 'crossdock exceptions list'.[/yellow]"
        )
