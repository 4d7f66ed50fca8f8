"""The hub's promises, with real processes: serve, workers and the sink, on SQLite and on
PostgreSQL (three worker processes there), killed with SIGKILL mid-load.

Each test would catch the breach of the promise in its name.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossdock.testing.processes import Hub, Sink

pytestmark = pytest.mark.slow

SECRET = "whk-test-secret-123"


def write_project(root: Path, sink_url: str, *, retry: str = "", rate_limit: str = "") -> Path:
    """A project: webhooks from 'shop' (HMAC-signed) flow to the reference sink."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "crossdock.yaml").write_text(
        f"""
version: 1
workspaces:
  acme:
    name: Acme
    connections:
      shop:
        connector: http
        inbound:
          signature: {{scheme: hmac-sha256, header: X-Signature, encoding: hex, secret: "{SECRET}"}}
          event_type: "body.type"
          record_key: "body.order.id"
          version: "body.order.version"
          event_id: "headers['x-event-id']"
      sink:
        connector: http
        outbound:
          base_url: {sink_url}
          timeout_seconds: 2
          operations:
            create_order:
              method: POST
              path: /records/orders
              idempotency_header: Idempotency-Key
              external_id: "body.id"
              lookup: {{method: GET, path: "/records/orders/by-key/{{idempotency_key}}"}}
        {rate_limit}
"""
    )
    (root / "flows" / "orders.yaml").write_text(
        f"""
name: orders-to-sink
trigger:
  connection: shop
  events: ["order.*"]
mapping:
  order_id: body.order.id
  version: body.order.version
  event: event.type
action:
  connection: sink
  operation: create_order
options:
  retry: {{max_attempts: 50, initial_delay: 200ms, max_delay: 2s, max_age: 1h{retry}}}
"""
    )
    return root


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def make_events(
    records: int, versions: int, dup_rate: float, seed: int = 7
) -> list[dict[str, Any]]:
    """Webhook deliveries: several versions per record, some delivered twice, shuffled
    within a small window so versions sometimes arrive out of order."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for v in range(1, versions + 1):
        for r in range(records):
            body = {"type": "order.updated", "order": {"id": f"O-{r}", "version": v}}
            out.append({"id": f"evt-{r}-{v}", "body": body})
    for i in range(0, len(out) - 5, 5):
        window = out[i : i + 5]
        rng.shuffle(window)
        out[i : i + 5] = window
    dups = [e for e in out if rng.random() < dup_rate]
    for d in dups:
        out.insert(rng.randrange(len(out)), d)
    return out


async def deliver_webhooks(
    hub_url: str, evs: list[dict[str, Any]], on_progress: Any = None, concurrency: int = 32
) -> dict[str, int]:
    """Send webhooks the way a vendor does: retry each until it is acknowledged (2xx)."""
    acked: dict[str, int] = {}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for e in evs:
        queue.put_nowait(e)
    sent = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while True:
            try:
                e = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            raw = json.dumps(e["body"]).encode()
            headers = {"X-Signature": sign(raw), "X-Event-Id": e["id"]}
            for _ in range(600):
                try:
                    r = await client.post(
                        f"{hub_url}/hooks/acme/shop", content=raw, headers=headers, timeout=5
                    )
                    if 200 <= r.status_code < 300:
                        acked[e["id"]] = r.status_code
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"event {e['id']} was never acknowledged")
            sent += 1
            if on_progress is not None:
                on_progress(sent)

    async with httpx.AsyncClient() as client:
        await asyncio.gather(*[sender(client) for _ in range(concurrency)])
    return acked


def check_exactly_once_in_order(sink: Sink, evs: list[dict[str, Any]], st: dict[str, Any]) -> None:
    """Every unique event has exactly one effect at the sink, or was skipped because a
    newer version of its record had already been delivered (rule "stale-version"); the
    newest version of every record arrives; per record, versions arrive in order."""
    unique = {e["id"]: e for e in evs}
    effects = sink.effects("orders")
    keys = [(f["body"]["order_id"], f["body"]["version"]) for f in effects]
    assert len(keys) == len(set(keys)), "a record version reached the sink twice"
    expected = {(e["body"]["order"]["id"], e["body"]["order"]["version"]) for e in unique.values()}
    assert set(keys) <= expected, f"unexpected at the sink: {sorted(set(keys) - expected)[:10]}"
    assert len(keys) + st["skipped"] == len(unique), (len(keys), st)
    newest: dict[str, int] = {}
    for order_id, version in expected:
        newest[order_id] = max(newest.get(order_id, 0), version)
    seen: dict[str, list[int]] = defaultdict(list)
    for order_id, version in keys:
        seen[order_id].append(version)
    for order_id, versions in seen.items():
        assert versions == sorted(versions), f"{order_id} arrived out of order: {versions}"
    missing_newest = [o for o, v in newest.items() if not seen[o] or seen[o][-1] != v]
    assert not missing_newest, f"newest version missing for {missing_newest[:10]}"


def check_counts(st: dict[str, Any], unique_events: int) -> None:
    assert st["balanced"], st
    assert st["received"] == st["succeeded"] + st["skipped"] + st["in_progress"] + st["exceptions"]
    assert st["events"] == unique_events, st
    assert st["received"] == unique_events, st
    assert st["exceptions"] == 0, st


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    s = Sink(tmp_path)
    yield s
    s.stop()


def hub_for(database_url: str, tmp_path: Path, sink: Sink, **project: str) -> Hub:
    project_dir = write_project(tmp_path / "project", sink.url, **project)
    workers = 0 if database_url.startswith("sqlite") else 3
    return Hub(project_dir, database_url, tmp_path, workers=workers)


def test_acknowledged_events_survive_kill_9_and_reach_the_sink_exactly_once_in_order(
    database_url: str, tmp_path: Path, sink: Sink
) -> None:
    hub = hub_for(database_url, tmp_path, sink).start()
    evs = make_events(records=300, versions=4, dup_rate=0.2)
    kills = {len(evs) // 3, 2 * len(evs) // 3}
    killed: list[int] = []

    def on_progress(n: int) -> None:
        if n in kills and n not in killed:
            killed.append(n)
            hub.kill()
            hub.start()

    try:
        acked = asyncio.run(deliver_webhooks(hub.url, evs, on_progress))
        # One more kill while deliveries are in flight.
        time.sleep(0.3)
        hub.kill()
        hub.start()
        st = hub.wait_settled()
    finally:
        hub.stop()
    assert len(killed) == 2
    unique = {e["id"] for e in evs}
    assert set(acked) == unique
    check_counts(st, len(unique))
    check_exactly_once_in_order(sink, evs, st)


def test_destination_outage_then_recovery_delivers_everything_once(
    database_url: str, tmp_path: Path, sink: Sink
) -> None:
    hub = hub_for(database_url, tmp_path, sink).start()
    try:
        sink.fault({"kind": "outage", "duration": 3})
        evs = make_events(records=50, versions=2, dup_rate=0.1)
        asyncio.run(deliver_webhooks(hub.url, evs))
        st = hub.wait_settled()
    finally:
        hub.stop()
    check_counts(st, len({e["id"] for e in evs}))
    check_exactly_once_in_order(sink, evs, st)
    assert sink.stats()["faults_injected"] > 0


def test_429_storm_is_honoured_and_drains_without_exceptions(
    database_url: str, tmp_path: Path, sink: Sink
) -> None:
    hub = hub_for(database_url, tmp_path, sink).start()
    try:
        sink.fault({"kind": "rate_limit", "retry_after": 1, "probability": 0.5, "count": 200})
        evs = make_events(records=80, versions=2, dup_rate=0.0)
        asyncio.run(deliver_webhooks(hub.url, evs))
        st = hub.wait_settled()
    finally:
        hub.stop()
    check_counts(st, len(evs))
    check_exactly_once_in_order(sink, evs, st)


def test_timeout_after_the_effect_is_verified_not_duplicated(
    database_url: str, tmp_path: Path, sink: Sink
) -> None:
    hub = hub_for(database_url, tmp_path, sink).start()
    try:
        sink.fault({"kind": "timeout", "delay": 4, "after_effect": True, "count": 5})
        evs = make_events(records=20, versions=1, dup_rate=0.0)
        asyncio.run(deliver_webhooks(hub.url, evs))
        st = hub.wait_settled()
    finally:
        hub.stop()
    check_counts(st, len(evs))
    check_exactly_once_in_order(sink, evs, st)


def test_bad_signature_is_rejected_with_401_and_stores_nothing(
    database_url: str, tmp_path: Path, sink: Sink
) -> None:
    hub = hub_for(database_url, tmp_path, sink).start()
    try:
        raw = json.dumps({"type": "order.created", "order": {"id": "X", "version": 1}}).encode()
        r = httpx.post(
            f"{hub.url}/hooks/acme/shop",
            content=raw,
            headers={"X-Signature": sign(raw + b" "), "X-Event-Id": "e1"},
        )
        assert r.status_code == 401
        problem = r.json()
        assert problem["status"] == 401 and SECRET not in r.text
        r2 = httpx.post(f"{hub.url}/hooks/acme/shop", content=raw, headers={"X-Event-Id": "e2"})
        assert r2.status_code == 401
        st = hub.status()
    finally:
        hub.stop()
    assert st["events"] == 0 and st["received"] == 0
