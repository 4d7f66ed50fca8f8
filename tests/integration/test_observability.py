"""Observability: Prometheus metrics, JSON logs with correlation ids, OpenTelemetry traces,
/healthz and /readyz — with real hubs, the reference sink and a polled vendor on loopback,
on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crossdock.emulators.serving import serving
from crossdock.emulators.sink import SinkState, running_sink
from crossdock.project.config import load_project
from crossdock.runtime import metrics, tracing
from crossdock.runtime.hub import Hub
from crossdock.runtime.loader import apply_project
from crossdock.security.crypto import SecretBox, generate_key
from crossdock.store.database import Database
from crossdock.store.migrate import MIGRATIONS, upgrade
from crossdock.store.tables import deliveries
from crossdock.testing.pgserver import free_port
from crossdock.testing.processes import crossdock

SECRET = "obs-webhook-secret-77"
SINK_TOKEN = "obs-sink-token-55"
VENDOR_TOKEN = "obs-vendor-token-31"
WORKSPACES = ("acme", "globex")


# -- the project ---------------------------------------------------------------------------
def write_project(root: Path, sink_url: str, vendor_url: str | None = None) -> Path:
    """Two workspaces, each: webhooks from 'shop' -> flow 'orders' -> the sink, whose
    follow-up event feeds flow 'notes'; flow 'refunds' never runs. With ``vendor_url``,
    acme also polls 'market' every half second."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    spaces = []
    for ws in WORKSPACES:
        market = ""
        if vendor_url is not None and ws == "acme":
            market = f"""
      market:
        connector: http
        poll:
          url: {vendor_url}/orders
          auth: {{type: bearer, token: {VENDOR_TOKEN}}}
          interval_seconds: 0.5
          items: body.orders
          cursor: item.updated_at
          event_type: "'order.updated'"
          record_key: body.id
          version: body.updated_at"""
        spaces.append(
            f"""
  {ws}:
    connections:
      shop:
        connector: http
        inbound:
          signature: {{scheme: hmac-sha256, header: X-Signature, encoding: hex, secret: {SECRET}}}
          event_type: "headers['x-event-type']"
          record_key: body.id
          version: body.version
      sink:
        connector: http
        outbound:
          base_url: {sink_url}
          auth: {{type: bearer, token: {SINK_TOKEN}}}
          timeout_seconds: 2
          operations:
            create_order:
              method: POST
              path: /records/orders
              external_id: body.id
              lookup: {{method: GET, path: "/records/orders/by-key/{{idempotency_key}}"}}
            create_note:
              method: POST
              path: /records/notes{market}
"""
        )
        (root / "flows" / f"orders-{ws}.yaml").write_text(
            f"""
name: orders
workspace: {ws}
trigger: {{connection: shop, events: [order.created]}}
mapping:
  id: body.id
  version: body.version
  email: body.customer.email
action: {{connection: sink, operation: create_order}}
options:
  retry: {{max_attempts: 3, initial_delay: 100ms, max_delay: 200ms}}
emit: order.sent
"""
        )
        (root / "flows" / f"notes-{ws}.yaml").write_text(
            f"""
name: notes
workspace: {ws}
trigger: {{connection: sink, events: [order.sent]}}
mapping: {{order: body.id}}
action: {{connection: sink, operation: create_note}}
"""
        )
        (root / "flows" / f"refunds-{ws}.yaml").write_text(
            f"""
name: refunds
workspace: {ws}
trigger: {{connection: shop, events: [order.refunded]}}
mapping: {{id: body.id}}
action: {{connection: sink, operation: create_note}}
"""
        )
        if market:
            (root / "flows" / "market-acme.yaml").write_text(
                """
name: market-orders
workspace: acme
trigger: {connection: market, events: [order.updated]}
mapping: {id: body.id}
action: {connection: sink, operation: create_note}
"""
            )
    (root / "crossdock.yaml").write_text("version: 1\nworkspaces:" + "".join(spaces))
    return root


def order(key: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": key,
        "version": version,
        "customer": {"email": f"{key.lower()}@example.com"},
        **extra,
    }


def sign(raw: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post(url: str, ws: str, body: Any, *, secret: str = SECRET, **headers: str) -> httpx.Response:
    raw = json.dumps(body).encode()
    h = {"X-Signature": sign(raw, secret), "X-Event-Type": "order.created", **headers}
    return httpx.post(f"{url}/hooks/{ws}/shop", content=raw, headers=h, timeout=10)


def wait_settled(db: Database, expected: int, timeout: float = 20.0) -> None:
    """Until ``expected`` deliveries exist and none is pending or in progress."""

    def counts(conn: Any) -> tuple[int, int]:
        total = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
        open_ = conn.execute(
            select(func.count()).where(deliveries.c.state.in_(("pending", "in_progress")))
        ).scalar_one()
        return int(total), int(open_)

    deadline = time.monotonic() + timeout
    seen = (0, 0)
    while time.monotonic() < deadline:
        seen = db.read_sync(counts)
        if seen[0] >= expected and seen[1] == 0:
            return
        time.sleep(0.05)
    raise TimeoutError(f"deliveries (total, open) = {seen}, expected {expected} settled")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[Samples, str]:
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, r.text


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


class HubRun:
    def __init__(self, url: str, db: Database, hub: Hub) -> None:
        self.url, self.db, self.hub = url, db, hub


@contextlib.contextmanager
def running_hub(
    database_url: str,
    root: Path,
    *,
    run_worker: bool = True,
    prepare: bool = True,
    key: str | None = None,
) -> Iterator[HubRun]:
    db = Database(database_url)
    box = SecretBox([key or generate_key()])
    if prepare:
        upgrade(db)
        db.start()
        apply_project(db, load_project(root, {}), box)
    hub = Hub(db, box, root=root, run_worker=run_worker)
    with serving(hub.asgi(), lifespan="on") as srv:
        yield HubRun(srv.url, db, hub)


@pytest.fixture
def sink() -> Iterator[Any]:
    state = SinkState()
    with running_sink(state=state, token=SINK_TOKEN) as s:
        yield s


# -- metrics -------------------------------------------------------------------------------
def test_metrics_count_webhooks_deliveries_and_vendor_calls_by_configured_names(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    with running_hub(database_url, root) as h:
        sink.state.add_fault({"kind": "status", "status": 503, "count": 1, "collection": "orders"})
        first = post(h.url, "acme", order("ORD-7F3A"))
        assert first.status_code == 202, first.text
        assert post(h.url, "acme", order("ORD-7F3A")).status_code == 200  # duplicate
        assert post(h.url, "acme", order("ORD-BAD"), secret="wrong").status_code == 401
        assert httpx.post(f"{h.url}/hooks/acme/nope-conn", content=b"{}").status_code == 404
        assert httpx.post(f"{h.url}/hooks/nope-ws/nope-conn", content=b"{}").status_code == 404
        assert post(h.url, "globex", order("ORD-G1")).status_code == 202
        no_email = order("ORD-G2")
        del no_email["customer"]
        assert post(h.url, "globex", no_email).status_code == 202
        # acme: order (503 then success) + note; globex: order + note, and one exception.
        wait_settled(h.db, 5)
        s, body = scrape(h.url)

    wh = "crossdock_webhooks_total"
    assert value(s, wh, workspace="acme", connection="shop", result="accepted") == 1
    assert value(s, wh, workspace="acme", connection="shop", result="duplicate") == 1
    assert value(s, wh, workspace="acme", connection="shop", result="rejected") == 1
    assert value(s, wh, workspace="globex", connection="shop", result="accepted") == 2
    # Names that are not configured never become labels.
    assert value(s, wh, workspace="acme", connection="_unknown", result="rejected") == 1
    assert value(s, wh, workspace="_unknown", connection="_unknown", result="rejected") == 1
    for word in ("nope-conn", "nope-ws", "ORD-7F3A", "ORD-G1", "example.com"):
        assert word not in body
    # Handling time of the committed ones (accepted and duplicate), with its buckets.
    hist = "crossdock_webhook_seconds"
    assert value(s, hist + "_count", workspace="acme", connection="shop") == 2
    assert value(s, hist + "_bucket", workspace="acme", connection="shop", le="+Inf") == 2
    assert value(s, hist + "_bucket", workspace="acme", connection="shop", le="0.005") is not None

    vc = "crossdock_vendor_calls_total"
    assert value(s, vc, workspace="acme", connection="sink", outcome="retryable") == 1
    assert (value(s, vc, workspace="acme", connection="sink", outcome="success") or 0) >= 2
    assert (value(s, vc, workspace="globex", connection="sink", outcome="success") or 0) >= 2
    vs = "crossdock_vendor_call_seconds_bucket"
    assert value(s, vs, workspace="acme", connection="sink", outcome="retryable", le="+Inf") == 1
    assert (
        value(s, vs, workspace="acme", connection="sink", outcome="success", le="0.1") is not None
    )

    dt = "crossdock_deliveries_total"
    assert value(s, dt, workspace="acme", flow="orders", state="retry") == 1
    assert value(s, dt, workspace="acme", flow="orders", state="succeeded") == 1
    assert value(s, dt, workspace="acme", flow="notes", state="succeeded") == 1
    assert value(s, dt, workspace="globex", flow="orders", state="succeeded") == 1
    assert value(s, dt, workspace="globex", flow="orders", state="exception") == 1
    ds = "crossdock_delivery_seconds"
    assert value(s, ds + "_count", workspace="acme", flow="orders") == 1
    assert (value(s, ds + "_sum", workspace="acme", flow="orders") or 0) >= 0.05  # the back-off
    assert value(s, ds + "_bucket", workspace="acme", flow="orders", le="86400.0") == 1

    assert value(s, "crossdock_exceptions_open", workspace="globex", category="mapping") == 1
    assert value(s, "crossdock_exceptions_open", workspace="acme", category="mapping") is None
    assert value(s, "crossdock_queue_depth", workspace="acme", flow="orders", state="pending") == 0
    assert value(s, "crossdock_lag_seconds", workspace="acme", flow="refunds") == 0
    assert value(s, "crossdock_database_up") == 1


def test_queue_depth_and_lag_gauges_read_pending_deliveries_per_workspace_and_flow(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    with running_hub(database_url, root, run_worker=False) as h:
        for key in ("A1", "A2", "A3"):
            assert post(h.url, "acme", order(key)).status_code == 202
        assert post(h.url, "globex", order("G1")).status_code == 202
        time.sleep(0.4)
        s, _ = scrape(h.url)
        # A delivery leased by a worker counts as in progress.
        h.db.write_sync(
            lambda c: c.execute(
                deliveries.update()
                .where(deliveries.c.id == select(func.min(deliveries.c.id)).scalar_subquery())
                .values(state="in_progress", lease_owner="w", lease_expires_at=time.time() + 60)
            )
        )
        s2, _ = scrape(h.url)

    q = "crossdock_queue_depth"
    assert value(s, q, workspace="acme", flow="orders", state="pending") == 3
    assert value(s, q, workspace="acme", flow="orders", state="in_progress") == 0
    assert value(s, q, workspace="globex", flow="orders", state="pending") == 1
    assert value(s, q, workspace="acme", flow="refunds", state="pending") == 0  # configured, idle
    lag = "crossdock_lag_seconds"
    assert (value(s, lag, workspace="acme", flow="orders") or 0) >= 0.3
    assert (value(s, lag, workspace="globex", flow="orders") or 0) >= 0.3
    assert value(s, lag, workspace="acme", flow="notes") == 0
    assert value(s2, q, workspace="acme", flow="orders", state="pending") == 2
    assert value(s2, q, workspace="acme", flow="orders", state="in_progress") == 1
    assert value(s, "crossdock_worker_inflight") is None  # this process runs no worker


def test_queue_gauges_stay_cheap_with_100k_deliveries(database_url: str) -> None:
    db = Database(database_url)
    upgrade(db)
    now = time.time()
    states = ["succeeded"] * 97 + ["pending", "in_progress", "exception"]
    rows = [
        {
            "workspace": f"ws{i % 3}",
            "event_id": i,
            "flow": f"flow{i % 7}",
            "record_key": f"r{i}",
            "version_key": "",
            "ordered": True,
            "generation": 0,
            "state": states[i % 100],
            "priority": 0,
            "attempts": 1,
            "throttled": 0,
            "next_attempt_at": now,
            "created_at": now - (i % 600),
            "updated_at": now,
        }
        for i in range(100_000)
    ]
    with db.engine.begin() as conn:
        conn.execute(deliveries.insert(), rows)
    try:
        t0 = time.perf_counter()
        queue, _ = db.read_sync(metrics.queue_snapshot)
        elapsed = time.perf_counter() - t0
    finally:
        db.close()
    assert sum(n for *_, n, _first in queue) == 2000
    assert elapsed < 1.0, f"the scrape-time queries took {elapsed:.3f} s"


def test_two_hubs_in_one_process_keep_separate_metrics(tmp_path: Path, sink: Any) -> None:
    root = write_project(tmp_path / "p", sink.url)
    with (
        running_hub(f"sqlite:///{tmp_path / 'a.db'}", root) as a,
        running_hub(f"sqlite:///{tmp_path / 'b.db'}", root) as b,
    ):
        assert post(a.url, "acme", order("A1")).status_code == 202
        wait_settled(a.db, 2)
        sa, _ = scrape(a.url)
        sb, _ = scrape(b.url)
    labels = {"workspace": "acme", "connection": "shop", "result": "accepted"}
    assert value(sa, "crossdock_webhooks_total", **labels) == 1
    assert value(sb, "crossdock_webhooks_total", **labels) is None
    succeeded = {"workspace": "acme", "flow": "orders", "state": "succeeded"}
    assert value(sa, "crossdock_deliveries_total", **succeeded) == 1
    assert value(sb, "crossdock_deliveries_total", **succeeded) is None


class Vendor:
    """A vendor listing orders by ``updated_at``: down for its first answer."""

    def __init__(self) -> None:
        self.calls = 0

    def app(self) -> Starlette:
        async def list_orders(request: Request) -> JSONResponse:
            self.calls += 1
            if request.headers.get("authorization") != f"Bearer {VENDOR_TOKEN}":
                return JSONResponse({"message": "bad token"}, 401)
            if self.calls == 1:
                return JSONResponse({"message": "down"}, 503)
            return JSONResponse({"orders": [{"id": "P1", "updated_at": "2026-01-01T00:00:00Z"}]})

        return Starlette(routes=[Route("/orders", list_orders)])


def test_polling_rounds_are_counted_per_connection_stream_and_result(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    vendor = Vendor()
    with serving(vendor.app()) as v:
        root = write_project(tmp_path / "p", sink.url, v.url)
        with running_hub(database_url, root) as h:
            deadline = time.monotonic() + 15
            labels = {"workspace": "acme", "connection": "market", "stream": "poll"}
            while time.monotonic() < deadline:
                s, body = scrape(h.url)
                if (value(s, "crossdock_polls_total", **labels, result="ok") or 0) >= 1:
                    break
                time.sleep(0.1)
    assert value(s, "crossdock_polls_total", **labels, result="error") == 1
    assert (value(s, "crossdock_polls_total", **labels, result="ok") or 0) >= 1
    assert VENDOR_TOKEN not in body


# -- logs ----------------------------------------------------------------------------------
@contextlib.contextmanager
def serve_process(
    root: Path, database_url: str, tmp_path: Path, *args: str, env: dict[str, str]
) -> Iterator[tuple[str, Path]]:
    """``crossdock serve`` as a real process; yields its URL and its stderr file."""
    port = free_port()
    stderr = tmp_path / f"serve-{port}.stderr"
    full_env = {
        **os.environ,
        "CROSSDOCK_DATABASE_URL": database_url,
        "CROSSDOCK_SECRET_KEYS": generate_key(),
        **env,
    }
    with open(stderr, "wb") as err, open(tmp_path / f"serve-{port}.stdout", "wb") as out:
        proc = subprocess.Popen(
            crossdock("serve", "--project", str(root), "--port", str(port), *args),
            stdout=out,
            stderr=err,
            env=full_env,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited early:\n{stderr.read_text()[-3000:]}")
                try:
                    httpx.get(url + "/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(stderr.read_text()[-3000:]) from None
                    time.sleep(0.05)
            yield url, stderr
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_json_log_lines_of_a_webhook_and_its_deliveries_carry_its_correlation_id(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    reader = Database(database_url)
    env = {"CROSSDOCK_LOG_LEVEL": "debug", "CROSSDOCK_LOG_FORMAT": "human"}  # the flag wins
    with serve_process(root, database_url, tmp_path, "--log-format", "json", env=env) as (
        url,
        stderr,
    ):
        ok = post(url, "acme", order("ORD-LOG1"))
        assert ok.status_code == 202, ok.text
        bad = order("ORD-LOG2")
        del bad["customer"]
        broken = post(url, "globex", bad)
        assert broken.status_code == 202
        wait_settled(reader, 3)
        time.sleep(0.2)
    reader.close()
    cid, cid2 = ok.json()["correlation_id"], broken.json()["correlation_id"]

    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    mine = [x for x in lines if x.get("correlation_id") == cid]
    events = {x["event"] for x in mine}
    assert {"webhook_received", "delivery_settled"} <= events, mine
    received = next(x for x in mine if x["event"] == "webhook_received")
    assert received["workspace"] == "acme" and received["connection"] == "shop"
    assert received["logger"] == "crossdock.receiver" and received["level"] == "debug"
    assert "timestamp" in received
    settled = [x for x in mine if x["event"] == "delivery_settled"]
    # The order and its follow-up note: one trail, one correlation id.
    assert sorted(x["flow"] for x in settled) == ["notes", "orders"]
    assert all(x["state"] == "succeeded" and isinstance(x["delivery"], int) for x in settled)
    opened = [x for x in lines if x["event"] == "exception_opened"]
    assert len(opened) == 1 and opened[0]["correlation_id"] == cid2
    assert opened[0]["level"] == "warning" and opened[0]["category"] == "mapping"
    assert opened[0]["workspace"] == "globex" and opened[0]["flow"] == "orders"
    text_ = stderr.read_text()
    for secret in (SECRET, SINK_TOKEN, "ord-log1@example.com"):
        assert secret not in text_


def test_log_format_flag_human_prints_readable_lines_with_the_correlation_id(
    tmp_path: Path, sink: Any
) -> None:
    database_url = f"sqlite:///{tmp_path / 'h.db'}"
    root = write_project(tmp_path / "p", sink.url)
    reader = Database(database_url)
    env = {"CROSSDOCK_LOG_LEVEL": "debug", "CROSSDOCK_LOG_FORMAT": "json"}
    with serve_process(root, database_url, tmp_path, "--log-format", "human", env=env) as (
        url,
        stderr,
    ):
        ok = post(url, "acme", order("ORD-H1"))
        assert ok.status_code == 202
        wait_settled(reader, 2)
        time.sleep(0.2)
    reader.close()
    cid = ok.json()["correlation_id"]
    settled = [ln for ln in stderr.read_text().splitlines() if "delivery_settled" in ln]
    assert settled and all(f"correlation_id={cid}" in ln for ln in settled)
    assert not settled[0].lstrip().startswith("{")


# -- traces --------------------------------------------------------------------------------
@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable(exporter)
    try:
        yield exporter
    finally:
        tracing.reset()


def _by_name(items: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in items if s.name == name]


def test_one_webhook_makes_one_trace_with_ingest_delivery_and_vendor_call_spans(
    database_url: str, tmp_path: Path, sink: Any, spans: InMemorySpanExporter
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    with running_hub(database_url, root) as h:
        r = post(h.url, "acme", order("ORD-T1"))
        assert r.status_code == 202
        wait_settled(h.db, 2)
    cid = r.json()["correlation_id"]
    trace_id, root_span_id = tracing.trace_ids(cid)
    finished = list(spans.get_finished_spans())
    assert {s.context.trace_id for s in finished} == {trace_id}  # one webhook, one trace

    (ingest,) = _by_name(finished, "ingest")
    assert ingest.parent is None and ingest.context.span_id == root_span_id
    assert ingest.attributes is not None and ingest.attributes["crossdock.connection"] == "shop"
    assert ingest.start_time is not None and ingest.end_time is not None
    assert ingest.start_time <= ingest.end_time

    delivery_spans = _by_name(finished, "delivery")
    # The order, then its follow-up note (the same correlation id, so the same trace).
    assert sorted(str((s.attributes or {})["crossdock.flow"]) for s in delivery_spans) == [
        "notes",
        "orders",
    ]
    assert all(s.parent is not None and s.parent.span_id == root_span_id for s in delivery_spans)
    assert all((s.attributes or {})["crossdock.state"] == "succeeded" for s in delivery_spans)

    calls = _by_name(finished, "vendor call")
    assert len(calls) >= 2
    delivery_ids = {s.context.span_id for s in delivery_spans}
    for call in calls:
        attrs = call.attributes or {}
        assert call.parent is not None and call.parent.span_id in delivery_ids
        assert attrs["http.method"] in ("POST", "GET")
        assert str(attrs["http.url"]).startswith(sink.url + "/records/")
        assert "?" not in str(attrs["http.url"])
        assert attrs["http.status_code"] in (200, 201)
    assert SINK_TOKEN not in repr([dict(s.attributes or {}) for s in finished])


def test_a_delivery_made_by_another_hub_process_joins_the_ingest_trace(
    database_url: str, tmp_path: Path, sink: Any, spans: InMemorySpanExporter
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    key = generate_key()
    # One hub only receives; another (sharing nothing but the database) delivers.
    with running_hub(database_url, root, run_worker=False, key=key) as receiver:
        r = post(receiver.url, "acme", order("ORD-T2"))
        assert r.status_code == 202
    with running_hub(database_url, root, prepare=False, key=key) as worker:
        wait_settled(worker.db, 2)
    trace_id, root_span_id = tracing.trace_ids(r.json()["correlation_id"])
    finished = list(spans.get_finished_spans())
    (ingest,) = _by_name(finished, "ingest")
    orders = [
        s
        for s in _by_name(finished, "delivery")
        if (s.attributes or {})["crossdock.flow"] == "orders"
    ]
    assert len(orders) == 1
    assert orders[0].context.trace_id == ingest.context.trace_id == trace_id
    assert orders[0].parent is not None and orders[0].parent.span_id == root_span_id


def test_span_urls_drop_query_strings_and_user_info() -> None:
    url = "https://user:pw@api.example.com:8443/v1/orders?api_key=s3cret&x=1#frag"
    assert tracing.safe_url(url) == "https://api.example.com:8443/v1/orders"
    assert tracing.safe_url("http://127.0.0.1/records") == "http://127.0.0.1/records"


def test_trace_ids_are_derived_from_the_correlation_id_the_same_in_every_process() -> None:
    a = tracing.trace_ids("abc123")
    assert a == tracing.trace_ids("abc123") != tracing.trace_ids("abc124")
    assert 0 < a[0] < 2**128 and 0 < a[1] < 2**64


def test_tracing_is_off_without_the_environment_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSDOCK_OTEL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    tracing.reset()
    try:
        assert tracing.tracer() is None
        with tracing.delivery_span("c1", {}) as span:
            assert span is None
        monkeypatch.setenv("CROSSDOCK_OTEL", "1")
        tracing.reset()
        assert tracing.tracer() is not None
    finally:
        tracing.reset()


# -- health --------------------------------------------------------------------------------
def test_healthz_is_ok_and_readyz_is_ready_when_database_schema_and_worker_are(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    with running_hub(database_url, root) as h:
        health = httpx.get(f"{h.url}/healthz")
        ready = httpx.get(f"{h.url}/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "worker": "ok"},
    }


def _previous_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    head_id = script.get_current_head()
    assert head_id is not None
    head = script.get_revision(head_id)
    assert head is not None and isinstance(head.down_revision, str)
    return head.down_revision


def test_readyz_is_503_naming_the_schema_when_it_is_behind(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    old = _previous_revision()
    with running_hub(database_url, root) as h:
        h.db.write_sync(
            lambda c: c.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": old})
        )
        ready = httpx.get(f"{h.url}/readyz")
        health = httpx.get(f"{h.url}/healthz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready" and body["not_ready"] == ["schema"]
    assert old in body["checks"]["schema"] and "crossdock migrate" in body["checks"]["schema"]
    assert health.status_code == 200


def test_readyz_is_503_naming_the_database_when_it_is_gone(
    database_url: str, tmp_path: Path, sink: Any
) -> None:
    root = write_project(tmp_path / "p", sink.url)
    db_dir = tmp_path / "dbdir"
    db_dir.mkdir()
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{db_dir / 'gone.db'}"
    with running_hub(database_url, root) as h:
        assert httpx.get(f"{h.url}/readyz").status_code == 200
        if h.db.is_sqlite:
            shutil.rmtree(db_dir)
        else:
            base, name = database_url.rsplit("/", 1)
            with psycopg.connect(base + "/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        h.db.engine.dispose()
        ready = httpx.get(f"{h.url}/readyz", timeout=15)
        health = httpx.get(f"{h.url}/healthz")
        scraped = httpx.get(f"{h.url}/metrics", timeout=15)
    assert ready.status_code == 503
    body = ready.json()
    assert "database" in body["not_ready"]
    assert body["checks"]["database"].startswith("not answering")
    assert "postgres@" not in json.dumps(body)  # no connection details
    assert health.status_code == 200
    # The counters are still served, and the scrape says the database did not answer.
    assert scraped.status_code == 200 and "crossdock_database_up 0.0" in scraped.text


def test_readyz_is_503_when_the_worker_loop_stops_ticking(
    tmp_path: Path, sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "WORKER_STALE_SECONDS", 0.3)
    root = write_project(tmp_path / "p", sink.url)
    release = threading.Event()

    async def stuck() -> int:  # a loop turn that does not come back
        import asyncio

        while not release.is_set():
            await asyncio.sleep(0.02)
        return 0

    with running_hub(f"sqlite:///{tmp_path / 'w.db'}", root) as h:
        assert httpx.get(f"{h.url}/readyz").status_code == 200
        worker = h.hub.worker
        assert worker is not None
        worker.step = stuck  # type: ignore[method-assign]
        time.sleep(0.6)
        stalled = httpx.get(f"{h.url}/readyz")
        release.set()
        del worker.step
        time.sleep(0.2)
        recovered = httpx.get(f"{h.url}/readyz")
    assert stalled.status_code == 503
    assert stalled.json()["not_ready"] == ["worker"]
    assert "has not run for" in stalled.json()["checks"]["worker"]
    assert recovered.status_code == 200


def test_readyz_of_a_hub_without_a_worker_does_not_check_one(tmp_path: Path, sink: Any) -> None:
    root = write_project(tmp_path / "p", sink.url)
    with running_hub(f"sqlite:///{tmp_path / 'n.db'}", root, run_worker=False) as h:
        ready = httpx.get(f"{h.url}/readyz")
    assert ready.status_code == 200 and "worker" not in ready.json()["checks"]


def test_spans_are_exported_over_otlp_http_to_the_collector_named_by_the_environment(
    tmp_path: Path, sink: Any
) -> None:
    """A real ``crossdock serve`` with OTEL_EXPORTER_OTLP_ENDPOINT sends its spans, as
    OTLP protobuf, to a collector stand-in on loopback: one trace per correlation id."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[bytes] = []

    async def collect(request: Request) -> JSONResponse:
        assert request.headers["content-type"] == "application/x-protobuf"
        received.append(await request.body())
        return JSONResponse({})

    collector = Starlette(routes=[Route("/v1/traces", collect, methods=["POST"])])
    database_url = f"sqlite:///{tmp_path / 'otlp.db'}"
    root = write_project(tmp_path / "p", sink.url)
    reader = Database(database_url)
    with serving(collector) as col:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": col.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        with serve_process(root, database_url, tmp_path, env=env) as (url, _stderr):
            r = post(url, "acme", order("ORD-OTLP"))
            assert r.status_code == 202
            wait_settled(reader, 2)
            deadline = time.monotonic() + 15
            names: set[str] = set()
            traces: set[bytes] = set()
            while (
                time.monotonic() < deadline and not {"ingest", "delivery", "vendor call"} <= names
            ):
                time.sleep(0.2)
                for raw in list(received):
                    req = ExportTraceServiceRequest.FromString(raw)
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            for span in ss.spans:
                                names.add(span.name)
                                traces.add(span.trace_id)
    reader.close()
    assert {"ingest", "delivery", "vendor call"} <= names
    trace_id, _ = tracing.trace_ids(r.json()["correlation_id"])
    assert trace_id.to_bytes(16, "big") in traces


def test_a_worker_process_serves_its_own_metrics_and_health(
    tmp_path: Path, sink: Any, pg_server: Any
) -> None:
    """On PostgreSQL with a separate ``crossdock worker``, the worker's counters are
    scraped from the worker itself (``--metrics-port``)."""
    from tests.conftest import _pg_url

    database_url = _pg_url(pg_server)
    root = write_project(tmp_path / "p", sink.url)
    reader = Database(database_url)
    mport = free_port()
    keys = {"CROSSDOCK_SECRET_KEYS": generate_key()}
    with serve_process(root, database_url, tmp_path, "--no-worker", env=keys) as (url, _err):
        env = {**os.environ, "CROSSDOCK_DATABASE_URL": database_url, **keys}
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            crossdock("worker", "--project", str(root), "--metrics-port", str(mport)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            assert post(url, "acme", order("ORD-W1")).status_code == 202
            wait_settled(reader, 2, timeout=40)
            body = ""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "crossdock_deliveries_total{" not in body:
                with contextlib.suppress(httpx.TransportError):
                    body = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=5).text
                time.sleep(0.2)
            families = {f.name: f for f in text_string_to_metric_families(body)}
            settled = [
                s
                for s in families["crossdock_deliveries"].samples
                if s.name == "crossdock_deliveries_total" and s.labels["state"] == "succeeded"
            ]
            assert sum(s.value for s in settled) == 2
            ready = httpx.get(f"http://127.0.0.1:{mport}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
            log.close()
    reader.close()


def test_metrics_need_the_token_when_one_is_set(
    database_url: str, tmp_path: Path, sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSDOCK_METRICS_TOKEN", "scrape-token-1")
    root = write_project(tmp_path / "p", sink.url)
    with running_hub(database_url, root) as h:
        anonymous = httpx.get(h.url + "/metrics", timeout=10)
        wrong = httpx.get(h.url + "/metrics", headers={"Authorization": "Bearer no"}, timeout=10)
        right = httpx.get(
            h.url + "/metrics", headers={"Authorization": "Bearer scrape-token-1"}, timeout=10
        )
    assert anonymous.status_code == wrong.status_code == 401
    assert "scrape-token-1" not in anonymous.text
    assert right.status_code == 200 and "crossdock_queue_depth" in right.text
