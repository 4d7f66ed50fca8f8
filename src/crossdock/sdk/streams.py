"""Polling streams with a durable cursor.

A :class:`Stream` reads what changed at the vendor since a :class:`Cursor` and yields
:class:`~crossdock.sdk.events.IncomingEvent` objects; the hub stores the events and the
advanced cursor in one transaction, so the cursor never moves past an unstored event.

The cursor (after dlt's incremental): the last position seen (an ``updated_at`` or a
sequence), the ids already seen *at* that position (a boundary that re-reads the same
instant does not make new events), and a lag window re-read on every round for vendors
whose writes become visible late. Duplicates from the lag window are absorbed by the
hub's event dedup.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from crossdock.sdk.events import IncomingEvent

__all__ = ["Cursor", "Stream"]


def _as_time(value: str) -> datetime | None:
    if value.isdigit():
        return None  # a sequence number ("20240115" would parse as a date)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _later(a: str, b: str) -> bool:
    ta, tb = _as_time(a), _as_time(b)
    if ta is not None and tb is not None:
        return ta > tb
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a > b


def _same(a: str, b: str) -> bool:
    """The same position, also when written differently (``+00:00`` and ``Z``)."""
    if a == b:
        return True
    ta, tb = _as_time(a), _as_time(b)
    return ta is not None and tb is not None and ta == tb


@dataclass
class Cursor:
    """A stream's durable position."""

    value: str
    seen_at_value: list[str] = field(default_factory=list)
    lag_seconds: float = 0.0

    def start(self) -> str:
        """Where the next read starts: the position less the lag window."""
        if self.lag_seconds:
            t = _as_time(self.value)
            if t is not None:
                back = (t - timedelta(seconds=self.lag_seconds)).astimezone(UTC)
                return back.isoformat().replace("+00:00", "Z")
        return self.value

    def seen(self, position: str | None, item_id: str | None) -> bool:
        """Whether an item at ``position`` was already taken at the boundary."""
        return (
            position is not None
            and item_id is not None
            and _same(position, self.value)
            and item_id in self.seen_at_value
        )

    def advance(self, position: str | None, item_id: str | None = None) -> None:
        """Move forward to ``position`` (never back); remember ids at the boundary."""
        if position is None:
            return
        if _later(position, self.value):
            self.value = position
            self.seen_at_value = [item_id] if item_id else []
        elif _same(position, self.value) and item_id and item_id not in self.seen_at_value:
            self.seen_at_value.append(item_id)
            del self.seen_at_value[:-200]

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state for the cursors table."""
        return {"cursor": self.value, "seen": self.seen_at_value}

    @classmethod
    def from_state(cls, state: dict[str, Any], initial: str, lag_seconds: float) -> Cursor:
        """A cursor from stored state (or the stream's initial position)."""
        seen = state.get("seen")
        return cls(
            value=str(state.get("cursor") or initial),
            seen_at_value=[str(s) for s in seen] if isinstance(seen, list) else [],
            lag_seconds=lag_seconds,
        )


class Stream:
    """A list at the vendor read incrementally. Subclasses set the class attributes and
    implement :meth:`read`."""

    name: ClassVar[str]
    """The stream's name, unique within its connector (``orders``)."""
    event_types: ClassVar[tuple[str, ...]] = ()
    """The event types it yields (flows are checked against them)."""
    initial_cursor: ClassVar[str] = "1970-01-01T00:00:00Z"
    lag_seconds: ClassVar[float] = 60.0
    interval_seconds: ClassVar[float] = 60.0

    def __init__(self, connector: Any) -> None:
        self.connector = connector

    def read(self, cursor: Cursor) -> AsyncIterator[IncomingEvent]:
        """Yield events changed since ``cursor.start()``; call ``cursor.advance`` for each."""
        raise NotImplementedError
