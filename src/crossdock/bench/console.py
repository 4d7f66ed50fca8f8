"""How fast the console's pages answer with a realistic amount of history in the database.

``python -m crossdock.bench.console [--deliveries 100000] [--database sqlite|postgresql]
[--runs 5] [--out FILE]``:

1. a fresh database (a SQLite file, or a database on a throw-away PostgreSQL server, or on
   ``CROSSDOCK_DATABASE_URL``) gets the two-merchant console project
   (:mod:`crossdock.testing.console`) with ``crossdock apply`` and the console users;
2. it is seeded with ``--deliveries`` deliveries spread over the last 7 days (80% acme,
   20% globex): each shop order is a webhook event with its body, its ``orders-to-sink``
   delivery, the follow-up event at the sink and its ``orders-to-warehouse`` delivery;
   about 3 attempts per delivery on average (retries of 503 answers before the success),
   cross-references for what arrived, 2% of the deliveries ending as exceptions of about
   20 causes (unknown SKUs, validation errors, an unavailable sink), filed into ``cases``
   with ``exceptions.case_id`` like :func:`crossdock.store.cases.attach_exception` does,
   1% skipped. Nothing is left pending, so the hub's worker stays idle while pages are
   timed. Rows go in with multi-row inserts, one transaction per batch;
3. ``crossdock serve`` starts on it; ``ada`` signs in, and every page is requested once
   (the *cold* figure: the first request after start), then ``--runs`` more times: median
   and p95 (nearest rank) of those.

PostgreSQL gets an ``ANALYZE`` after the load (what autovacuum would do shortly after a
bulk insert); SQLite gets none, as the hub never runs one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from sqlalchemy import Connection, Table, text

from crossdock.bench.runner import Databases
from crossdock.store.cases import cause_of
from crossdock.store.database import Database
from crossdock.store.tables import (
    attempts,
    cases,
    cross_references,
    deliveries,
    event_bodies,
    events,
    exceptions,
)
from crossdock.testing.console import create_users, sign_in, write_project
from crossdock.testing.processes import Hub, crossdock

DAY = 86400.0
SPAN = 7 * DAY
BATCH = 2000  # orders per transaction
GOOD_SKUS = ("ABC-1", "ABC-2", "ABC-3")
GHOST_SKUS = tuple(f"GHOST-{i}" for i in range(1, 16))  # 15 lookup causes
# Attempts of a delivered delivery: mean 3.0 (1 + retries of 503 answers).
ATTEMPTS = (1, 1, 1, 2, 2, 3, 4, 5, 5, 6)
VALIDATION = (
    "The destination refused the order: currency 'XTS' is not accepted.",
    "The destination refused the order: a line has quantity 0.",
    "The destination refused the order: order_number is longer than 20 characters.",
    "The destination refused the order: the customer's country is not served.",
)


# -- seeding ----------------------------------------------------------------------------
@dataclass
class Rows:
    """The rows of one batch, per table."""

    events: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    xrefs: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, conn: Connection) -> None:
        """Multi-row inserts, in the caller's transaction."""
        pairs: list[tuple[Table, list[dict[str, Any]]]] = [
            (events, self.events),
            (event_bodies, self.bodies),
            (deliveries, self.deliveries),
            (attempts, self.attempts),
            (exceptions, self.exceptions),
            (cross_references, self.xrefs),
        ]
        for table, rows in pairs:
            if rows:
                conn.execute(table.insert(), rows)


@dataclass
class Ids:
    """Next id per table (ids are given explicitly: no RETURNING round trips)."""

    event: int = 0
    delivery: int = 0
    attempt: int = 0
    exception: int = 0
    xref: int = 0
    sink: dict[str, int] = field(default_factory=dict)

    def next(self, name: str) -> int:
        """The next id of ``name``."""
        value = getattr(self, name) + 1
        setattr(self, name, value)
        return int(value)

    def sink_id(self, collection: str) -> str:
        """The id the reference sink would give the next record of ``collection``."""
        n = self.sink.get(collection, 0) + 1
        self.sink[collection] = n
        return f"{collection}-{n}"


@dataclass
class Seeded:
    """What the seeding made, and the things the timed pages look at."""

    orders: int = 0
    deliveries: int = 0
    events: int = 0
    attempts: int = 0
    exceptions: int = 0
    cases: int = 0
    xrefs: int = 0
    seconds: float = 0.0
    order_number: str = ""  # a recent acme order, for the search by order number
    sku: str = ""  # a SKU of a few dozen acme orders
    record: str = ""  # an acme order with an exception and retries (record page)
    case_id: int = 0  # an open acme case


class Seeder:
    """Generates the history (deterministic for a seed)."""

    def __init__(self, target: int, now: float, seed: int = 7) -> None:
        self.target = target
        self.now = now
        self.rnd = random.Random(seed)
        self.ids = Ids()
        self.out = Seeded()
        # (workspace, cause key) -> case row; exceptions per case
        self.cases: dict[tuple[str, str], dict[str, Any]] = {}
        self.case_open: dict[int, int] = {}

    # -- one order ------------------------------------------------------------------
    def _headers(self, order_id: str, rid: str) -> str:
        return orjson.dumps(
            {
                "host": "hub.example:8080",
                "user-agent": "Shopify-Captain-Hook",
                "content-type": "application/json",
                "x-signature": "[REDACTED]",
                "x-event-type": "order.created",
                "x-event-id": f"{order_id}-1-order.created",
                "x-request-id": rid,
            }
        ).decode()

    def _case(self, ws: str, category: str, reason: str, flow: str, fix: str, at: float) -> int:
        cause = cause_of(category, reason, flow)
        row = self.cases.get((ws, cause.key))
        if row is None:
            row = {
                "id": len(self.cases) + 1,
                "workspace": ws,
                "key": cause.key,
                "category": category,
                "connection": cause.connection,
                "title": cause.title,
                "reason": reason,
                "fix": fix,
                "hint": None if cause.hint is None else orjson.dumps(cause.hint).decode(),
                "state": "closed",
                "assignee": None,
                "resolution": None,
                "created_at": at,
                "updated_at": at,
                "closed_at": at,
            }
            self.cases[(ws, cause.key)] = row
        row["created_at"] = min(row["created_at"], at)
        row["updated_at"] = max(row["updated_at"], at)
        return int(row["id"])

    def _attempts(
        self,
        rows: Rows,
        *,
        ws: str,
        delivery_id: int,
        corr: str,
        at: float,
        path: str,
        request: dict[str, Any],
        n: int,
        last_ok: bool,
        answer: dict[str, Any] | None,
        final_status: int = 201,
    ) -> float:
        """``n`` attempts, 503s then the last one; returns when the last ended."""
        t = at
        req_body = orjson.dumps(request).decode()
        for i in range(n):
            last = i == n - 1
            status = (201 if last_ok else final_status) if last else 503
            lat = self.rnd.uniform(8, 60) if status != 503 else self.rnd.uniform(2, 15)
            rows.attempts.append(
                {
                    "id": self.ids.next("attempt"),
                    "workspace": ws,
                    "delivery_id": delivery_id,
                    "connection": "sink",
                    "correlation_id": corr,
                    "started_at": t,
                    "latency_ms": lat,
                    "method": "POST",
                    "url": f"http://sink.internal:8090{path}",
                    "status": status,
                    "outcome": "success"
                    if status == 201
                    else "unavailable"
                    if status == 503
                    else "permanent",
                    "error": None if status == 201 else f"'sink' answered {status}.",
                    "request_headers": orjson.dumps(
                        {
                            "Content-Type": "application/json",
                            "X-Correlation-Id": corr,
                            "Idempotency-Key": f"{corr}{delivery_id:08x}",
                        }
                    ).decode(),
                    "request_body": req_body,
                    "response_headers": '{"Server":"uvicorn","Content-Type":"application/json"}',
                    "response_body": orjson.dumps(answer).decode()
                    if status == 201 and answer is not None
                    else '{"detail":"Service Unavailable"}'
                    if status == 503
                    else '{"detail":"Unprocessable"}',
                }
            )
            t += lat / 1000 + (0.2 * 2**i if not last else 0)
        return t

    def order(self, rows: Rows, i: int) -> None:
        """One shop order and everything that followed it."""
        rnd = self.rnd
        ws = "acme" if rnd.random() < 0.8 else "globex"
        order_id = str(100000 + i)
        corr = f"{i:024x}"
        at = self.now - SPAN + SPAN * (i + rnd.random()) / (self.target / 2 + 1)
        at = min(at, self.now - 1)
        roll = rnd.random()
        # ~2% of deliveries end as exceptions: picks with unknown SKUs, orders the sink
        # refused, orders that ran out of retries while the sink was unavailable.
        ghost = roll < 0.024
        refused = 0.024 <= roll < 0.03
        exhausted = 0.03 <= roll < 0.034
        skipped = 0.034 <= roll < 0.054
        skus = [rnd.choice(GOOD_SKUS) for _ in range(rnd.randint(1, 3))]
        if ghost:
            skus.append(rnd.choice(GHOST_SKUS))
        body = {
            "id": order_id,
            "version": 1,
            "name": f"#{order_id}",
            "currency": "eur",
            "customer": {"email": f"buyer{i}@example.com", "country": "DE"},
            "line_items": [{"sku": s, "quantity": 1 + k} for k, s in enumerate(skus)],
        }
        shop_event = self.ids.next("event")
        rows.events.append(
            {
                "id": shop_event,
                "workspace": ws,
                "connection": "shop",
                "type": "order.created",
                "record_key": order_id,
                "version": "1",
                "version_key": "n10000000000000000001",
                "dedup_key": f"id:{order_id}-1-order.created",
                "correlation_id": corr,
                "received_at": at,
                "origin": "webhook",
            }
        )
        rows.bodies.append(
            {
                "event_id": shop_event,
                "headers": self._headers(order_id, corr),
                "body": orjson.dumps(body).decode(),
            }
        )
        mapped = {
            "order_number": f"#{order_id}",
            "currency": "EUR",
            "lines": [{"sku": s, "quantity": 1 + k} for k, s in enumerate(skus)],
        }
        sink_delivery = self.ids.next("delivery")
        state = "succeeded"
        n = rnd.choice(ATTEMPTS)
        answer: dict[str, Any] | None = None
        detail = None
        exc: tuple[str, str, str] | None = None
        if skipped:
            state, n, detail = "skipped", 0, "Filtered out: the order is a test order."
        elif refused:
            state, n = "exception", 1
            reason = rnd.choice(VALIDATION)
            detail = reason
            exc = ("validation", reason, "Correct the order at the shop, then retry.")
        elif exhausted:
            state, n = "exception", 3
            reason = "'sink' is not answering (503). Crossdock gave up after 3 attempts."
            detail = reason
            exc = ("unavailable", reason, "Check the destination, then retry.")
        else:
            sink_id = self.ids.sink_id(f"{ws}-orders")
            answer = {"id": sink_id, "collection": f"{ws}-orders", "body": mapped}
        end = at + 0.01
        if n:
            end = self._attempts(
                rows,
                ws=ws,
                delivery_id=sink_delivery,
                corr=corr,
                at=at + 0.005,
                path=f"/records/{ws}-orders",
                request=mapped,
                n=n,
                last_ok=state == "succeeded",
                answer=answer,
                final_status=503 if exhausted else 422,
            )
        rows.deliveries.append(
            self._delivery(
                sink_delivery, ws, shop_event, "orders-to-sink", order_id, state, n, at, end, detail
            )
        )
        if exc is not None:
            self._exception(rows, ws, sink_delivery, "orders-to-sink", order_id, exc, end)
        if answer is None:
            return
        rows.xrefs.append(self._xref(ws, "shop", order_id, answer["id"], end))
        # The follow-up at the sink and the pick request for the warehouse.
        follow = self.ids.next("event")
        rows.events.append(
            {
                "id": follow,
                "workspace": ws,
                "connection": "sink",
                "type": "order.sent",
                "record_key": order_id,
                "version": "1",
                "version_key": "n10000000000000000001",
                "dedup_key": f"follow-up:{sink_delivery}",
                "correlation_id": corr,
                "received_at": end,
                "origin": "follow-up",
            }
        )
        rows.bodies.append(
            {"event_id": follow, "headers": "{}", "body": orjson.dumps(answer).decode()}
        )
        pick_delivery = self.ids.next("delivery")
        pick = {
            "order_ref": answer["id"],
            "order_number": f"#{order_id}",
            "lines": [{"item": f"WH-{s}", "quantity": 1 + k} for k, s in enumerate(skus)],
        }
        if ghost:
            unknown = skus[-1]
            reason = f"SKU '{unknown}' is not in lookup table 'skus' of flow orders-to-warehouse"
            fix = (
                f"Add '{unknown}' to the 'skus' table (flows/{ws}-orders-to-warehouse.yaml "
                "line 16) and retry the delivery"
            )
            rows.deliveries.append(
                self._delivery(
                    pick_delivery,
                    ws,
                    follow,
                    "orders-to-warehouse",
                    order_id,
                    "exception",
                    0,
                    end,
                    end + 0.01,
                    reason,
                )
            )
            self._exception(
                rows,
                ws,
                pick_delivery,
                "orders-to-warehouse",
                order_id,
                ("lookup", reason, fix),
                end + 0.01,
            )
            return
        pick_id = self.ids.sink_id(f"{ws}-picks")
        n2 = rnd.choice(ATTEMPTS)
        end2 = self._attempts(
            rows,
            ws=ws,
            delivery_id=pick_delivery,
            corr=corr,
            at=end + 0.005,
            path=f"/records/{ws}-picks",
            request=pick,
            n=n2,
            last_ok=True,
            answer={"id": pick_id, "collection": f"{ws}-picks", "body": pick},
        )
        rows.deliveries.append(
            self._delivery(
                pick_delivery,
                ws,
                follow,
                "orders-to-warehouse",
                order_id,
                "succeeded",
                n2,
                end,
                end2,
                None,
            )
        )
        rows.xrefs.append(self._xref(ws, "sink", order_id, pick_id, end2))

    def _delivery(
        self,
        did: int,
        ws: str,
        event_id: int,
        flow: str,
        key: str,
        state: str,
        n: int,
        created: float,
        updated: float,
        detail: str | None,
    ) -> dict[str, Any]:
        return {
            "id": did,
            "workspace": ws,
            "event_id": event_id,
            "flow": flow,
            "record_key": key,
            "version_key": "n10000000000000000001",
            "ordered": True,
            "generation": 0,
            "state": state,
            "priority": 0,
            "attempts": n,
            "throttled": 0,
            "next_attempt_at": updated,
            "lease_owner": None,
            "lease_expires_at": None,
            "outcome": {"succeeded": "success", "skipped": "skipped"}.get(state, "permanent"),
            "detail": detail,
            "override_body": None,
            "created_at": created,
            "updated_at": updated,
        }

    def _exception(
        self,
        rows: Rows,
        ws: str,
        did: int,
        flow: str,
        key: str,
        exc: tuple[str, str, str],
        at: float,
    ) -> None:
        category, reason, fix = exc
        case_id = self._case(ws, category, reason, flow, fix, at)
        # Older exceptions were mostly dealt with; the last two days' are open.
        is_open = at > self.now - 2 * DAY or self.rnd.random() < 0.2
        if is_open:
            self.case_open[case_id] = self.case_open.get(case_id, 0) + 1
        rows.exceptions.append(
            {
                "id": self.ids.next("exception"),
                "workspace": ws,
                "delivery_id": did,
                "flow": flow,
                "record_key": key,
                "category": category,
                "reason": reason,
                "fix": fix,
                "state": "open" if is_open else "resolved",
                "resolution": None if is_open else "skipped by a person",
                "created_at": at,
                "updated_at": at,
                "case_id": case_id,
            }
        )

    def _xref(self, ws: str, source: str, key: str, target_id: str, at: float) -> dict[str, Any]:
        return {
            "id": self.ids.next("xref"),
            "workspace": ws,
            "source_connection": source,
            "source_key": key,
            "target_connection": "sink",
            "target_id": target_id,
            "updated_at": at,
        }

    # -- everything -----------------------------------------------------------------
    def run(self, db: Database, say: Callable[[str], None]) -> Seeded:
        """Insert until ``target`` deliveries exist; one transaction per batch."""
        t0 = time.monotonic()
        i = 0
        while self.ids.delivery < self.target:
            rows = Rows()
            stop = i + BATCH
            while i < stop and self.ids.delivery < self.target:
                self.order(rows, i)
                i += 1
            with db.engine.begin() as conn:
                rows.insert(conn)
            self.out.attempts += len(rows.attempts)
            self.out.exceptions += len(rows.exceptions)
            self.out.xrefs += len(rows.xrefs)
            if i % (BATCH * 10) == 0:
                say(f"  {self.ids.delivery:,} deliveries")
        case_rows = list(self.cases.values())
        for row in case_rows:
            if self.case_open.get(row["id"]):
                row["state"], row["closed_at"] = "open", None
        with db.engine.begin() as conn:
            conn.execute(cases.insert(), case_rows)
            if db.dialect == "postgresql":
                for table in (
                    "events",
                    "deliveries",
                    "attempts",
                    "exceptions",
                    "cases",
                    "cross_references",
                ):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        if db.dialect == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        out = self.out
        out.orders, out.deliveries, out.events = i, self.ids.delivery, self.ids.event
        out.cases = len(case_rows)
        out.seconds = time.monotonic() - t0
        self._pick_targets(db)
        return out

    def _pick_targets(self, db: Database) -> None:
        def pick(conn: Connection) -> None:
            out = self.out
            out.order_number = "#" + str(
                conn.execute(
                    text(
                        "SELECT record_key FROM events WHERE workspace = 'acme' "
                        "AND origin = 'webhook' ORDER BY received_at DESC LIMIT 1 OFFSET 500"
                    )
                ).scalar()
            )
            out.sku = str(
                conn.execute(
                    text(
                        "SELECT c.hint FROM cases c WHERE c.workspace = 'acme' "
                        "AND c.category = 'lookup' AND c.state = 'open' ORDER BY c.id LIMIT 1"
                    )
                ).scalar()
            )
            out.sku = json.loads(out.sku)["key"] if out.sku.startswith("{") else "GHOST-1"
            out.record = str(
                conn.execute(
                    text(
                        "SELECT x.record_key FROM exceptions x WHERE x.workspace = 'acme' "
                        "AND x.flow = 'orders-to-warehouse' ORDER BY x.id DESC LIMIT 1"
                    )
                ).scalar()
            )
            out.case_id = int(
                conn.execute(
                    text(
                        "SELECT id FROM cases WHERE workspace = 'acme' AND state = 'open' "
                        "ORDER BY updated_at DESC LIMIT 1"
                    )
                ).scalar()
                or 1
            )

        db.read_sync(pick)


# -- timing -----------------------------------------------------------------------------
def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def pages(s: Seeded) -> list[tuple[str, str]]:
    """(name, path) of every timed page."""
    w = "/console/w/acme"
    return [
        ("dashboard 1h", f"{w}/?window=1h"),
        ("dashboard 24h", f"{w}/?window=24h"),
        ("dashboard 7d", f"{w}/?window=7d"),
        ("cases list", f"{w}/cases"),
        ("case page", f"{w}/cases/{s.case_id}"),
        ("records: search by order number", f"{w}/records?q={quote(s.order_number, safe='')}"),
        ("records: search by SKU", f"{w}/records?q={quote(s.sku, safe='')}"),
        ("record page", f"{w}/records/shop/{quote(s.record, safe='')}"),
        ("connections", f"{w}/connections"),
        ("flows", f"{w}/flows"),
    ]


def time_pages(
    client: httpx.Client, targets: list[tuple[str, str]], runs: int
) -> list[dict[str, Any]]:
    """Cold request, then ``runs`` timed ones per page (ms)."""
    results = []
    for name, path in targets:
        t = time.perf_counter()
        r = client.get(path)
        cold = (time.perf_counter() - t) * 1000
        times = []
        status = r.status_code
        size = len(r.content)
        for _ in range(runs):
            t = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            status = r.status_code
        results.append(
            {
                "page": name,
                "path": path,
                "status": status,
                "bytes": size,
                "cold_ms": round(cold, 1),
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(p95(times), 1),
                "runs_ms": [round(x, 1) for x in times],
            }
        )
    return results


def render(results: list[dict[str, Any]], title: str) -> str:
    """The table printed at the end."""
    lines = [
        title,
        f"{'page':<34} {'status':>6} {'cold ms':>9} {'median ms':>10} {'p95 ms':>8} {'KiB':>7}",
    ]
    for r in results:
        lines.append(
            f"{r['page']:<34} {r['status']:>6} {r['cold_ms']:>9.1f} {r['median_ms']:>10.1f} "
            f"{r['p95_ms']:>8.1f} {r['bytes'] / 1024:>7.1f}"
        )
    return "\n".join(lines)


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    d = Path(tempfile.mkdtemp(prefix="crossdock-console-bench-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, serve, time; the report as a dict."""

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with _workdir(args.workdir) as workdir:
        dbs = Databases(args.database, workdir)
        try:
            url = dbs.fresh("console")
            project = write_project(workdir / "project", "http://127.0.0.1:9")  # never called
            env = {**os.environ, "CROSSDOCK_DATABASE_URL": url}
            subprocess.run(
                crossdock("apply", "--project", str(project)),
                check=True,
                env=env,
                capture_output=True,
            )
            create_users(url)
            say(f"seeding {args.deliveries:,} deliveries into {args.database} ...")
            db = Database(url)
            try:
                seeded = Seeder(args.deliveries, time.time()).run(db, say)
            finally:
                db.close()
            say(
                f"seeded in {seeded.seconds:.1f} s: {seeded.events:,} events, "
                f"{seeded.deliveries:,} deliveries, {seeded.attempts:,} attempts, "
                f"{seeded.exceptions:,} exceptions in {seeded.cases} cases, "
                f"{seeded.xrefs:,} cross-references"
            )
            hub = Hub(project, url, workdir, tag="console-bench")
            hub.start()
            try:
                with httpx.Client(base_url=hub.url, timeout=120) as client:
                    r = sign_in(client, "ada")
                    if r.status_code != 303:
                        raise RuntimeError(f"sign-in failed: {r.status_code}")
                    results = time_pages(client, pages(seeded), args.runs)
            finally:
                hub.stop()
            return {
                "database": args.database,
                "deliveries": args.deliveries,
                "runs": args.runs,
                "seeded": seeded.__dict__,
                "pages": results,
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                },
            }
        finally:
            dbs.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="Console page load times with a big history.")
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    args = parser.parse_args(argv)
    if args.deliveries < 100 or args.runs < 1:
        parser.error("--deliveries must be at least 100 and --runs at least 1")
    report = run(args)
    print(
        render(
            report["pages"],
            f"Console page load times: {args.database}, {args.deliveries:,} deliveries, "
            f"{args.runs} runs",
        )
    )
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
