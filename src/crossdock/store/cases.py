"""Cases: exceptions grouped by their cause, the unit an operations person works on.

One cause is one case: "The warehouse does not know SKU GHOST-1" is the same case for the
37 orders it holds up, and "'shop' refused our credentials" is one case for every write
to that shop. The cause is the exception's category and its reason with the parts that
differ per record or per answer removed (what the vendor "said", request ids); see
:func:`cause_key`. A case is opened with its first exception, gathers every later one
with the same cause while it is open, and closes itself when none of its exceptions is
still open (their deliveries succeeded, or were skipped or resolved by a person).

Run inside the writer's transaction (called from ``store.deliveries.settle`` and the
operator actions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from crossdock.store.tables import case_notes, cases, deliveries, events, exceptions

__all__ = [
    "WAITING",
    "Cause",
    "add_note",
    "affected_records",
    "assign",
    "attach_exception",
    "case_assignees",
    "case_noun",
    "case_rows",
    "cause_of",
    "close_all",
    "close_settled_cases",
    "load_case",
    "retry_all",
    "waiting_deliveries",
]

# Per-answer detail the reason may carry after the cause ("It said: {...request id...}").
_SAID = re.compile(r"\s*It said:.*$", re.DOTALL)
# A connection the reason names first: "'shop' refused our credentials".
_CONNECTION = re.compile(r"^'([^']+)'")
# What the flows' lookup failure says (flows/failures.py).
_LOOKUP = re.compile(
    r"'(?P<key>[^']*)' is not in lookup table '(?P<table>[^']+)' of flow (?P<flow>\S+)"
)
WAITING = ("open", "retrying")
"""Exception states of records still waiting in a case."""
MAX_AFFECTED = 200

# Causes that are about the system, not the record: one case per connection.
_SYSTEM_CATEGORIES = {"auth", "unavailable", "unreachable", "timeout", "rate_limited"}


@dataclass(frozen=True)
class Cause:
    """What groups exceptions into one case."""

    key: str
    title: str
    connection: str | None
    hint: dict[str, Any] | None


def _first_sentence(text: str) -> str:
    text = text.strip()
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z'\"])", text)
    return text[: m.start()] if m else text


def cause_of(category: str, reason: str, flow: str) -> Cause:
    """The cause of an exception: its case key, a title and a one-click fix hint."""
    core = _SAID.sub("", reason).strip()
    m = _CONNECTION.match(core)
    connection = m.group(1) if m else None
    hint: dict[str, Any] | None = None
    if category in _SYSTEM_CATEGORIES and connection:
        basis = f"{category}\n{connection}"
        title = _system_title(category, connection, core)
    else:
        basis = f"{category}\n{core}"
        title = _first_sentence(core)
    if category == "lookup":
        lm = _LOOKUP.search(core)
        if lm:
            hint = {
                "kind": "lookup",
                "flow": lm.group("flow"),
                "table": lm.group("table"),
                "key": lm.group("key"),
            }
    key = hashlib.sha256(basis.encode()).hexdigest()[:32]
    return Cause(key=key, title=title.rstrip("."), connection=connection, hint=hint)


def _system_title(category: str, connection: str, core: str) -> str:
    if category == "auth":
        return f"'{connection}' rejected the credentials: writes to {connection} are stopped"
    if category == "rate_limited":
        return f"'{connection}' keeps asking us to slow down"
    if category in ("unavailable", "unreachable"):
        return f"'{connection}' is not answering: writes to {connection} are waiting"
    if category == "timeout":
        return f"'{connection}' does not answer in time"
    return _first_sentence(core)


def attach_exception(
    conn: Connection,
    *,
    workspace: str,
    exception_id: int,
    flow: str,
    category: str,
    reason: str,
    fix: str,
    now: float,
) -> int:
    """Put an exception into the open case of its cause (opening one); returns the case id.

    The case's reason and fix follow the latest exception, so the advice shown is current.
    """
    cause = cause_of(category, reason, flow)
    row = conn.execute(
        select(cases.c.id)
        .where(cases.c.workspace == workspace, cases.c.key == cause.key, cases.c.state == "open")
        .order_by(cases.c.id.desc())
        .limit(1)
    ).first()
    reason_text = _SAID.sub("", reason).strip() if cause.connection else reason
    if row is None:
        case_id = int(
            conn.execute(
                cases.insert().values(
                    workspace=workspace,
                    key=cause.key,
                    category=category,
                    connection=cause.connection,
                    title=cause.title,
                    reason=reason_text,
                    fix=fix,
                    hint=orjson.dumps(cause.hint).decode() if cause.hint else None,
                    state="open",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )
    else:
        case_id = int(row[0])
        conn.execute(
            update(cases)
            .where(cases.c.id == case_id)
            .values(reason=reason_text, fix=fix, updated_at=now)
        )
    conn.execute(update(exceptions).where(exceptions.c.id == exception_id).values(case_id=case_id))
    return case_id


def close_settled_cases(
    conn: Connection,
    now: float,
    *,
    delivery_ids: Sequence[int] = (),
    case_ids: Iterable[int] = (),
) -> list[int]:
    """Close the open cases (of these deliveries' exceptions, or these cases) that have no
    exception left open or retrying. Returns the ids of the cases closed."""
    ids = set(case_ids)
    for i in range(0, len(delivery_ids), 500):
        chunk = list(delivery_ids[i : i + 500])
        ids.update(
            int(r[0])
            for r in conn.execute(
                select(exceptions.c.case_id)
                .where(exceptions.c.delivery_id.in_(chunk), exceptions.c.case_id.is_not(None))
                .distinct()
            )
        )
    if not ids:
        return []
    still = {
        int(r[0])
        for r in conn.execute(
            select(exceptions.c.case_id)
            .where(exceptions.c.case_id.in_(ids), exceptions.c.state != "resolved")
            .group_by(exceptions.c.case_id)
        )
    }
    done = sorted(ids - still)
    if done:
        conn.execute(
            update(cases)
            .where(cases.c.id.in_(done), cases.c.state == "open")
            .values(
                state="closed",
                closed_at=now,
                updated_at=now,
                resolution=func.coalesce(cases.c.resolution, "every delivery settled"),
            )
        )
    return done


def add_note(
    conn: Connection, workspace: str, case_id: int, author: str, text: str, now: float
) -> int:
    """Add a note to a case; returns the note's id."""
    res = conn.execute(
        case_notes.insert().values(
            workspace=workspace, case_id=case_id, author=author, text=text, created_at=now
        )
    )
    conn.execute(update(cases).where(cases.c.id == case_id).values(updated_at=now))
    return int(res.inserted_primary_key[0])  # type: ignore[index]


# -- reading and acting on cases (the console and the API) ------------------------------
def case_noun(event_type: str | None, n: int) -> str:
    """What the records of a case are, in words ("orders", "shipment"), from an event type."""
    t = (event_type or "").lower()
    for word, noun in (
        ("order", "order"),
        ("fulfil", "fulfillment"),
        ("ship", "shipment"),
        ("track", "shipment"),
        ("stock", "stock update"),
        ("inventory", "stock update"),
        ("invoice", "invoice"),
        ("label", "label"),
    ):
        if word in t:
            return noun + ("" if n == 1 else "s")
    return "record" if n == 1 else "records"


def case_rows(conn: Connection, ws: str, state: str) -> list[dict[str, Any]]:
    """A workspace's cases (``open``, ``closed`` or ``all``) with how many records wait."""
    q = select(cases).where(cases.c.workspace == ws)
    if state != "all":
        q = q.where(cases.c.state == state)
    rows = list(conn.execute(q.order_by(cases.c.updated_at.desc()).limit(500)))
    ids = [r.id for r in rows]
    if not ids:
        return []
    waiting: dict[int, int] = {}
    total: dict[int, int] = {}
    first: dict[int, int] = {}
    flows: dict[int, set[str]] = {}
    for cid, st, flow, n, first_id in conn.execute(
        select(
            exceptions.c.case_id,
            exceptions.c.state,
            exceptions.c.flow,
            func.count(),
            func.min(exceptions.c.id),
        )
        .where(exceptions.c.case_id.in_(ids))
        .group_by(exceptions.c.case_id, exceptions.c.state, exceptions.c.flow)
    ):
        total[cid] = total.get(cid, 0) + int(n)
        if st in WAITING:
            waiting[cid] = waiting.get(cid, 0) + int(n)
        flows.setdefault(cid, set()).add(flow)
        first[cid] = min(first.get(cid, first_id), first_id)
    types = {
        cid: t
        for cid, t in conn.execute(
            select(exceptions.c.case_id, events.c.type)
            .select_from(
                exceptions.join(deliveries, deliveries.c.id == exceptions.c.delivery_id).join(
                    events, events.c.id == deliveries.c.event_id
                )
            )
            .where(exceptions.c.id.in_(list(first.values())))
        )
    }
    out = []
    for r in rows:
        n_wait = waiting.get(r.id, 0)
        n_all = total.get(r.id, 0)
        out.append(
            {
                **r._asdict(),
                "waiting": n_wait,
                "total": n_all,
                "noun": case_noun(types.get(r.id), n_wait if r.state == "open" else n_all),
                "flows": sorted(flows.get(r.id, ())),
            }
        )
    if state == "open":
        out.sort(key=lambda c: (-c["waiting"], -c["updated_at"]))
    return out


def load_case(conn: Connection, ws: str, case_id: int) -> Any:
    """The case's row, or None when it is not this workspace's."""
    return conn.execute(select(cases).where(cases.c.workspace == ws, cases.c.id == case_id)).first()


def affected_records(conn: Connection, case_id: int) -> tuple[list[dict[str, Any]], int]:
    """The newest records of a case (waiting ones first) and how many there are in all."""
    n = conn.execute(
        select(func.count()).select_from(exceptions).where(exceptions.c.case_id == case_id)
    ).scalar_one()
    rows = conn.execute(
        select(
            exceptions.c.id,
            exceptions.c.flow,
            exceptions.c.record_key,
            exceptions.c.state,
            exceptions.c.reason,
            exceptions.c.resolution,
            exceptions.c.updated_at,
            deliveries.c.id.label("delivery_id"),
            deliveries.c.state.label("delivery_state"),
            deliveries.c.attempts,
            events.c.connection,
            events.c.type,
            events.c.correlation_id,
            events.c.id.label("event_id"),
        )
        .select_from(
            exceptions.join(deliveries, deliveries.c.id == exceptions.c.delivery_id).join(
                events, events.c.id == deliveries.c.event_id
            )
        )
        .where(exceptions.c.case_id == case_id)
        .order_by((exceptions.c.state == "resolved").asc(), exceptions.c.id.desc())
        .limit(MAX_AFFECTED)
    )
    return [r._asdict() for r in rows], int(n)


def waiting_deliveries(conn: Connection, case_id: int) -> list[int]:
    """Ids of the case's deliveries that wait in the exception queue."""
    return [
        int(r[0])
        for r in conn.execute(
            select(exceptions.c.delivery_id)
            .select_from(exceptions.join(deliveries, deliveries.c.id == exceptions.c.delivery_id))
            .where(
                exceptions.c.case_id == case_id,
                exceptions.c.state == "open",
                deliveries.c.state == "exception",
            )
        )
    ]


def retry_all(conn: Connection, ids: list[int], now: float) -> int:
    """Make these deliveries (waiting in the exception queue) due at ``now``."""
    from crossdock.pipeline.actions import retry_deliveries

    done = 0
    for i in range(0, len(ids), 500):
        done += retry_deliveries(conn, ids[i : i + 500], now)
    return done


def close_all(conn: Connection, case_id: int, now: float, detail: str) -> int:
    """Skip every waiting delivery of a case with ``detail`` (who and why); close it."""
    from crossdock.pipeline.actions import close_delivery

    ids = waiting_deliveries(conn, case_id)
    for d in ids:
        close_delivery(conn, d, now, detail)
    conn.execute(
        update(cases).where(cases.c.id == case_id).values(resolution=detail, updated_at=now)
    )
    close_settled_cases(conn, now, case_ids=[case_id])
    return len(ids)


def case_assignees(conn: Connection, ws: str) -> list[dict[str, str]]:
    """Who a case of ``ws`` can be given to: enabled operators and admins of it."""
    from crossdock.store.tables import memberships, users

    return [
        {"username": r.username, "name": r.display_name, "role": r.role}
        for r in conn.execute(
            select(users.c.username, users.c.display_name, memberships.c.role)
            .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
            .where(
                memberships.c.workspace == ws,
                memberships.c.role.in_(("operator", "admin")),
                users.c.disabled_at.is_(None),
            )
            .order_by(users.c.display_name)
        )
    ]


def assign(conn: Connection, ws: str, case_id: int, who: str | None, by: str, now: float) -> bool:
    """Give a case to ``who`` (None: nobody) with a note; False if ``who`` may not take it
    (not an enabled operator or admin of the workspace)."""
    if who and who not in {p["username"] for p in case_assignees(conn, ws)}:
        return False
    conn.execute(update(cases).where(cases.c.id == case_id).values(assignee=who, updated_at=now))
    add_note(conn, ws, case_id, by, f"Assigned to {who}." if who else "Unassigned.", now)
    return True
