"""The REST API keeps its promises: keys per workspace and role, write-only credentials,
problem-details errors, exception actions that keep the counts equation, replay."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount

from crossdock.api.app import create_api
from crossdock.api.context import ApiContext
from crossdock.api.keys import create_api_key
from crossdock.api.kpis import status_counts
from crossdock.runtime.registry import Registry, WorkspaceRuntime
from crossdock.security.crypto import SecretBox, generate_key
from crossdock.store.database import Database
from crossdock.store.tables import (
    attempts,
    connections,
    deliveries,
    event_bodies,
    events,
    exceptions,
    metadata,
    workspaces,
)

TOKEN = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
FLOW = "orders-to-wms"


@dataclass
class FakeFlow:
    """The parts of a flow the API reads: its name, trigger and options."""

    name: str
    connection: str
    event_type: str
    options: Any = field(default_factory=lambda: SimpleNamespace(ordering="record", priority=0))

    def matches(self, connection: str, event_type: str) -> bool:
        return connection == self.connection and event_type == self.event_type


@dataclass
class Hub:
    db: Database
    box: SecretBox
    client: TestClient
    app: Any
    keys: dict[str, str]
    calls: dict[str, int]
    path: Path

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    db = Database(database_url)
    metadata.create_all(db.engine)
    db.start()
    box = SecretBox([generate_key()])
    registry = Registry(
        {
            "acme": WorkspaceRuntime(
                id="acme",
                name="Acme",
                flows={FLOW: FakeFlow(FLOW, "shop", "orders/create")},  # type: ignore[dict-item]
            ),
            "globex": WorkspaceRuntime(id="globex", name="Globex"),
        }
    )
    calls = {"on_change": 0, "wake": 0}

    def count(name: str) -> Any:
        def bump() -> None:
            calls[name] += 1

        return bump

    db.write_sync(
        lambda c: c.execute(
            workspaces.insert(),
            [
                {"id": "acme", "name": "Acme", "created_at": time.time()},
                {"id": "globex", "name": "Globex", "created_at": time.time()},
            ],
        )
    )
    ctx = ApiContext(
        db=db,
        registry=lambda: registry,
        secret_box=box,
        on_change=count("on_change"),
        wake=count("wake"),
        root=tmp_path,
    )
    app = create_api(ctx)
    keys = {
        "admin": create_api_key(db, "acme", "ada", "admin"),
        "operator": create_api_key(db, "acme", "olga", "operator"),
        "viewer": create_api_key(db, "acme", "vic", "viewer"),
        "globex": create_api_key(db, "globex", "gus", "admin"),
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Hub(db, box, client, app, keys, calls, tmp_path / "api.db")
    db.close()


# -- seeding -----------------------------------------------------------------------------
_seq = iter(range(1, 10**9))


def add_event(
    hub: Hub,
    ws: str = "acme",
    *,
    record_key: str = "1001",
    received_at: float | None = None,
    body: Any = None,
) -> int:
    n = next(_seq)
    at = received_at if received_at is not None else time.time()

    def write(c: Any) -> int:
        eid = c.execute(
            events.insert().values(
                workspace=ws,
                connection="shop",
                type="orders/create",
                record_key=record_key,
                version=str(n),
                version_key=f"n{n:020d}",
                dedup_key=f"e{n}",
                correlation_id=f"corr-{n}",
                received_at=at,
                origin="webhook",
            )
        ).inserted_primary_key[0]
        c.execute(
            event_bodies.insert().values(
                event_id=eid,
                headers="{}",
                body=orjson.dumps(body or {"id": record_key}).decode(),
            )
        )
        return int(eid)

    return hub.db.write_sync(write)


def add_delivery(
    hub: Hub,
    event_id: int,
    state: str,
    ws: str = "acme",
    *,
    attempts_made: int = 0,
    generation: int = 0,
    next_attempt_at: float | None = None,
) -> int:
    now = time.time()
    return int(
        hub.db.write_sync(
            lambda c: c.execute(
                deliveries.insert().values(
                    workspace=ws,
                    event_id=event_id,
                    flow=FLOW,
                    record_key="1001",
                    version_key="",
                    ordered=True,
                    generation=generation,
                    state=state,
                    priority=0,
                    attempts=attempts_made,
                    throttled=0,
                    next_attempt_at=next_attempt_at or now,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        )
    )


def add_exception(hub: Hub, delivery_id: int, ws: str = "acme", category: str = "data") -> int:
    now = time.time()
    return int(
        hub.db.write_sync(
            lambda c: c.execute(
                exceptions.insert().values(
                    workspace=ws,
                    delivery_id=delivery_id,
                    flow=FLOW,
                    record_key="1001",
                    category=category,
                    reason="The warehouse rejected the order: SKU 'X-1' is unknown.",
                    fix="Create SKU 'X-1' in the warehouse, then retry.",
                    state="open",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        )
    )


def add_attempt(hub: Hub, delivery_id: int, outcome: str, latency: float, at: float) -> None:
    hub.db.write_sync(
        lambda c: c.execute(
            attempts.insert().values(
                workspace="acme",
                delivery_id=delivery_id,
                connection="wms",
                correlation_id="corr",
                started_at=at,
                latency_ms=latency,
                method="POST",
                url="http://wms.test/orders",
                status=200 if outcome == "success" else 500,
                outcome=outcome,
                error=None if outcome == "success" else "server error",
                request_headers='{"authorization": "[REDACTED]"}',
                request_body='{"sku": "X-1"}',
                response_headers="{}",
                response_body='{"id": "W-1"}',
            )
        )
    )


def a_delivery_in_exception(hub: Hub, **kw: Any) -> tuple[int, int]:
    d = add_delivery(hub, add_event(hub), "exception", **kw)
    return d, add_exception(hub, d)


def delivery(hub: Hub, delivery_id: int) -> Any:
    return hub.db.read_sync(
        lambda c: c.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one()
    )


def connection_settings() -> dict[str, Any]:
    return {
        "connector": "http",
        "outbound": {
            "base_url": "http://wms.test",
            "auth": {"type": "bearer", "token": TOKEN},
            "operations": {"create_order": {"method": "POST", "path": "/orders"}},
        },
    }


def concrete(path: str) -> str:
    path = path.replace("{ws}", "acme")
    return re.sub(r"\{[a-z_]*id\}", "1", re.sub(r"\{name\}", "x", path))


def is_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


# -- authentication and authorisation ----------------------------------------------------
def test_every_route_requires_an_api_key(hub: Hub) -> None:
    routes = [r for r in hub.app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 20
    for route in routes:
        for method in route.methods:
            url = concrete(route.path)
            for headers in ({}, {"Authorization": "Bearer cdk_aaaaaaaa_" + "x" * 43}):
                r = hub.client.request(method, url, headers=headers, json={})
                body = is_problem(r, 401)
                assert "Bearer" in r.headers["www-authenticate"], (method, url)
                assert body["status"] == 401


def test_key_of_one_workspace_cannot_read_another(hub: Hub) -> None:
    theirs = add_event(hub, "globex")
    mine = add_event(hub, "acme")
    for url in ("/workspaces/acme", "/workspaces/acme/events", f"/workspaces/acme/events/{mine}"):
        body = is_problem(hub.client.get(url, headers=hub.auth("globex")), 404)
        assert "acme" in body["detail"]
    # A workspace that does not exist answers exactly like one that does.
    missing = is_problem(hub.client.get("/workspaces/nope", headers=hub.auth("globex")), 404)
    assert missing["detail"] == "No workspace 'nope'."
    # Ids of another workspace's rows are not reachable through one's own workspace.
    is_problem(hub.client.get(f"/workspaces/acme/events/{theirs}", headers=hub.auth("admin")), 404)
    listed = hub.client.get("/workspaces/acme/events", headers=hub.auth("admin")).json()
    assert [e["id"] for e in listed["items"]] == [mine]


def test_viewer_cannot_retry_an_exception(hub: Hub) -> None:
    d, x = a_delivery_in_exception(hub)
    url = f"/workspaces/acme/exceptions/{x}/retry"
    body = is_problem(hub.client.post(url, headers=hub.auth("viewer")), 403)
    assert "operator" in body["detail"]
    assert delivery(hub, d).state == "exception"
    assert hub.client.get(f"/workspaces/acme/exceptions/{x}", headers=hub.auth("viewer")).is_success
    # Operators act on exceptions but may not change connections.
    put = hub.client.put("/workspaces/acme/connections/wms", headers=hub.auth("operator"), json={})
    is_problem(put, 403)


# -- connections: credentials are write-only ---------------------------------------------
def test_connection_secret_is_never_returned(hub: Hub) -> None:
    url = "/workspaces/acme/connections/wms"
    put = hub.client.put(url, headers=hub.auth("admin"), json=connection_settings())
    assert put.status_code == 201, put.text
    assert hub.calls["on_change"] == 1
    answers = [
        put,
        hub.client.get(url, headers=hub.auth("admin")),
        hub.client.get("/workspaces/acme/connections", headers=hub.auth("viewer")),
    ]
    for r in answers:
        assert r.is_success
        assert TOKEN not in r.text
    shown = answers[1].json()
    assert shown["connector"] == "http"
    assert shown["source"] == "api"
    assert shown["settings"]["outbound"]["auth"]["token"] == "********"
    assert shown["settings"]["outbound"]["base_url"] == "http://wms.test"
    assert answers[2].json()["items"][0]["name"] == "wms"
    # Replacing it answers 200; deleting it removes it.
    again = hub.client.put(url, headers=hub.auth("admin"), json=connection_settings())
    assert again.status_code == 200 and TOKEN not in again.text
    assert hub.client.delete(url, headers=hub.auth("admin")).status_code == 204
    is_problem(hub.client.get(url, headers=hub.auth("admin")), 404)


def test_connection_secret_is_encrypted_at_rest(hub: Hub) -> None:
    r = hub.client.put(
        "/workspaces/acme/connections/wms", headers=hub.auth("admin"), json=connection_settings()
    )
    assert r.status_code == 201, r.text
    row = hub.db.read_sync(
        lambda c: c.execute(select(connections).where(connections.c.name == "wms")).one()
    )
    assert TOKEN not in row.settings
    assert TOKEN not in row.secrets
    assert TOKEN in orjson.dumps(hub.box.decrypt_json(row.secrets)).decode()
    for f in hub.path.parent.glob("api.db*"):
        assert TOKEN.encode() not in f.read_bytes(), f


def test_invalid_connection_settings_return_422_with_issues(hub: Hub) -> None:
    bad = {"outbound": {"operations": "not-a-mapping"}}
    r = hub.client.put("/workspaces/acme/connections/wms", headers=hub.auth("admin"), json=bad)
    body = is_problem(r, 422)
    assert len(body["issues"]) >= 2, body
    for issue in body["issues"]:
        assert issue["message"]
    assert "traceback" not in r.text.lower()
    assert hub.db.read_sync(lambda c: c.execute(select(connections)).first()) is None
    # A body that is not a JSON object is a request validation problem naming the body.
    r = hub.client.put("/workspaces/acme/connections/wms", headers=hub.auth("admin"), json=[1])
    issues = is_problem(r, 422)["issues"]
    assert issues[0]["location"] == "body" and issues[0]["expected"]


def test_invalid_flow_returns_422_with_line_and_column(hub: Hub) -> None:
    source = "name: orders-to-wms\non:\n  connection: [unclosed\n"
    r = hub.client.put(
        "/workspaces/acme/flows/orders-to-wms", headers=hub.auth("admin"), json={"source": source}
    )
    body = is_problem(r, 422)
    assert body["issues"], body
    for issue in body["issues"]:
        assert issue["message"] and issue["line"] >= 1 and issue["column"] >= 1
    is_problem(
        hub.client.get("/workspaces/acme/flows/orders-to-wms", headers=hub.auth("admin")), 404
    )
    assert hub.calls["on_change"] == 0


def test_admin_creates_and_revokes_keys_of_its_workspace(hub: Hub) -> None:
    r = hub.client.post(
        "/workspaces/acme/keys", headers=hub.auth("admin"), json={"name": "ci", "role": "viewer"}
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["key"].startswith("cdk_") and new["role"] == "viewer"
    mine = {"Authorization": f"Bearer {new['key']}"}
    assert hub.client.get("/workspaces/acme/events", headers=mine).status_code == 200
    listed = hub.client.get("/workspaces/acme/keys", headers=hub.auth("admin")).text
    assert new["key"] not in listed and "hash" not in listed
    is_problem(hub.client.get("/workspaces/acme/keys", headers=mine), 403)
    assert (
        hub.client.delete(f"/workspaces/acme/keys/{new['id']}", headers=hub.auth("admin"))
    ).status_code == 204
    is_problem(hub.client.get("/workspaces/acme/events", headers=mine), 401)
    other = hub.client.delete(f"/workspaces/globex/keys/{new['id']}", headers=hub.auth("globex"))
    is_problem(other, 404)


FLOW_YAML = """\
name: orders-to-wms
trigger:
  connection: shop
  events: orders/create
mapping:
  sku: body.sku
action:
  connection: wms
  operation: create_order
"""


def test_flow_is_validated_against_connections_and_kept_with_its_source(hub: Hub) -> None:
    admin = hub.auth("admin")
    shop = {
        "connector": "http",
        "inbound": {
            "signature": {"scheme": "none"},
            "event_type": "headers['x-topic']",
            "record_key": "body.id",
        },
    }
    assert hub.client.put("/workspaces/acme/connections/shop", headers=admin, json=shop).is_success
    url = "/workspaces/acme/flows/orders-to-wms"
    missing = is_problem(hub.client.put(url, headers=admin, json={"source": FLOW_YAML}), 422)
    (issue,) = missing["issues"]
    assert "wms" in issue["message"] and issue["line"] == 8 and issue["expected"]

    wms = hub.client.put(
        "/workspaces/acme/connections/wms", headers=admin, json=connection_settings()
    )
    assert wms.is_success
    r = hub.client.put(url, headers=admin, json={"source": FLOW_YAML})
    assert r.status_code == 201, r.text
    assert hub.client.get(url, headers=hub.auth("viewer")).json()["source"] == FLOW_YAML
    assert [
        f["name"] for f in hub.client.get("/workspaces/acme/flows", headers=admin).json()["items"]
    ] == ["orders-to-wms"]
    # A connection a flow uses cannot be deleted from under it.
    used = is_problem(hub.client.delete("/workspaces/acme/connections/wms", headers=admin), 409)
    assert "orders-to-wms" in used["detail"]
    # Flows sent over the network may not read the server's environment or files.
    sneaky = FLOW_YAML.replace("body.sku", "'${CROSSDOCK_SECRET_KEYS}'")
    issues = is_problem(hub.client.put(url, headers=admin, json={"source": sneaky}), 422)["issues"]
    assert any(i["line"] == 6 and "environment" in i["message"] for i in issues)
    assert hub.client.delete(url, headers=admin).status_code == 204
    assert hub.client.delete("/workspaces/acme/connections/wms", headers=admin).status_code == 204


# -- exceptions ----------------------------------------------------------------------------
def test_resolve_keeps_the_counts_equation(hub: Hub) -> None:
    for state in ("succeeded", "skipped", "pending", "in_progress"):
        add_delivery(hub, add_event(hub), state)
    d, x = a_delivery_in_exception(hub)
    d2, x2 = a_delivery_in_exception(hub)
    before = hub.db.read_sync(lambda c: status_counts(c, "acme"))
    assert before["balanced"] and before["exceptions"] == 2

    r = hub.client.post(
        f"/workspaces/acme/exceptions/{x}/resolve",
        headers=hub.auth("operator"),
        json={"note": "shipped by hand"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved"
    r = hub.client.post(
        f"/workspaces/acme/exceptions/{x2}/skip",
        headers=hub.auth("operator"),
        json={"reason": "test order"},
    )
    assert r.status_code == 200, r.text

    after = hub.client.get("/workspaces/acme/kpis", headers=hub.auth("viewer")).json()["totals"]
    assert after["received"] == before["received"]
    assert after["exceptions"] == 0
    assert after["skipped"] == before["skipped"] + 2
    assert after["received"] == (
        after["succeeded"] + after["skipped"] + after["in_progress"] + after["exceptions"]
    )
    assert delivery(hub, d).detail == "resolved by operator: shipped by hand"
    assert delivery(hub, d2).detail == "skipped by olga: test order"
    # A closed exception cannot be acted on again.
    again = hub.client.post(f"/workspaces/acme/exceptions/{x}/retry", headers=hub.auth("operator"))
    assert "skipped" in is_problem(again, 409)["detail"]
    assert (
        hub.client.get("/workspaces/acme/exceptions", headers=hub.auth("viewer")).json()["items"]
        == []
    )


def test_retry_makes_the_delivery_due_again(hub: Hub) -> None:
    later = time.time() + 3600
    d, x = a_delivery_in_exception(hub, attempts_made=3, next_attempt_at=later)
    before = time.time()
    r = hub.client.post(f"/workspaces/acme/exceptions/{x}/retry", headers=hub.auth("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "retrying"
    row = delivery(hub, d)
    assert row.state == "pending"
    assert before <= row.next_attempt_at <= time.time()
    assert row.attempts == 3
    assert hub.calls["wake"] == 1
    # Edit-and-retry stores the payload to send instead of the mapped one.
    d2, x2 = a_delivery_in_exception(hub)
    r = hub.client.post(
        f"/workspaces/acme/exceptions/{x2}/edit",
        headers=hub.auth("operator"),
        json={"payload": {"sku": "X-2", "qty": 1}},
    )
    assert r.status_code == 200, r.text
    assert orjson.loads(delivery(hub, d2).override_body) == {"sku": "X-2", "qty": 1}
    assert delivery(hub, d2).state == "pending"
    # retry-all picks up the rest, by category.
    d3, _x3 = a_delivery_in_exception(hub)
    r = hub.client.post(
        "/workspaces/acme/exceptions/retry-all?category=data", headers=hub.auth("operator")
    )
    assert r.json() == {"retried": 1}
    assert delivery(hub, d3).state == "pending"


def test_exception_detail_explains_without_secrets(hub: Hub) -> None:
    d, x = a_delivery_in_exception(hub)
    add_attempt(hub, d, "permanent", 12.0, time.time())
    r = hub.client.get(f"/workspaces/acme/exceptions/{x}", headers=hub.auth("viewer"))
    body = r.json()
    assert body["reason"].startswith("The warehouse rejected")
    assert body["fix"]
    assert body["delivery"]["state"] == "exception"
    assert body["event"]["body"] == {"id": "1001"}
    assert body["last_attempt"]["request"]["headers"] == {"authorization": "[REDACTED]"}
    assert body["created_at"].endswith("Z")


# -- replay ----------------------------------------------------------------------------
def test_replay_by_time_window_creates_new_generation(hub: Hub) -> None:
    t0 = time.time() - 7200
    done = add_event(hub, received_at=t0 + 10)
    add_delivery(hub, done, "succeeded")
    failed = add_event(hub, received_at=t0 + 20)
    failed_d = add_delivery(hub, failed, "exception")
    add_exception(hub, failed_d)
    busy = add_event(hub, received_at=t0 + 30)
    add_delivery(hub, busy, "pending")
    outside = add_event(hub, received_at=t0 + 5000)
    add_delivery(hub, outside, "succeeded")

    r = hub.client.post(
        "/workspaces/acme/replay",
        headers=hub.auth("operator"),
        json={"since": t0, "until": t0 + 60, "flow": FLOW},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"events": 3, "deliveries_created": 1, "retried": 1, "unchanged": 1}
    rows = hub.db.read_sync(
        lambda c: c.execute(
            select(deliveries).where(deliveries.c.event_id == done).order_by(deliveries.c.id)
        ).all()
    )
    assert [(d.generation, d.state) for d in rows] == [(0, "succeeded"), (1, "pending")]
    assert delivery(hub, failed_d).state == "pending"
    assert hub.calls["wake"] == 1
    # By id, again: one more generation.
    r = hub.client.post(
        "/workspaces/acme/replay", headers=hub.auth("operator"), json={"event_ids": [outside]}
    )
    assert r.json()["deliveries_created"] == 1
    # Choosing nothing, or a flow that does not exist, is refused.
    is_problem(
        hub.client.post("/workspaces/acme/replay", headers=hub.auth("operator"), json={}), 422
    )
    is_problem(
        hub.client.post(
            "/workspaces/acme/replay",
            headers=hub.auth("operator"),
            json={"event_ids": [done], "flow": "nope"},
        ),
        404,
    )
    is_problem(
        hub.client.post(
            "/workspaces/acme/replay", headers=hub.auth("viewer"), json={"event_ids": [done]}
        ),
        403,
    )


# -- reading -------------------------------------------------------------------------------
def test_lists_are_paginated_with_a_cursor(hub: Hub) -> None:
    ids = [add_event(hub) for _ in range(5)]
    seen: list[int] = []
    url = "/workspaces/acme/events?limit=2"
    while True:
        page = hub.client.get(url, headers=hub.auth("viewer")).json()
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/workspaces/acme/events?limit=2&cursor={page['next_cursor']}"
    assert seen == sorted(ids, reverse=True)
    body = is_problem(
        hub.client.get("/workspaces/acme/events?cursor=garbage!", headers=hub.auth("viewer")), 422
    )
    assert body["issues"][0]["field"] == "cursor"


def test_kpis_report_rates_latency_and_availability(hub: Hub) -> None:
    d = add_delivery(hub, add_event(hub), "succeeded")
    now = time.time() // 60 * 60 - 30  # mid-minute: the four recent attempts share a minute
    for i, (outcome, ms) in enumerate(
        [("success", 10.0), ("success", 20.0), ("retryable", 30.0), ("rate_limited", 40.0)]
    ):
        add_attempt(hub, d, outcome, ms, now - 1 - i)
    add_attempt(hub, d, "retryable", 99.0, now - 600)  # a minute with no success
    add_attempt(hub, d, "success", 5.0, now - 7200)  # outside the window
    add_delivery(hub, add_event(hub), "pending")
    body = hub.client.get("/workspaces/acme/kpis?window=3600", headers=hub.auth("viewer")).json()
    (wms,) = body["connections"]
    assert wms["attempts"] == 5
    assert wms["success_rate"] == pytest.approx(0.4)
    assert wms["error_rate"] == pytest.approx(0.4)
    assert wms["latency"]["p50_ms"] == 30.0
    assert wms["latency"]["p99_ms"] == 99.0
    assert wms["availability"] == pytest.approx(0.5)
    (flow,) = body["flows"]
    assert flow["backlog"] == 1 and flow["volume"] == 2 and flow["lag_seconds"] >= 0
    assert body["totals"]["received"] == 2


# -- errors and the OpenAPI document -------------------------------------------------------
def test_errors_are_problem_details_without_traceback(hub: Hub, tmp_path: Path) -> None:
    def broken_registry() -> Registry:
        raise RuntimeError("secret internals: /etc/passwd")

    db = hub.db
    app = create_api(ApiContext(db=db, registry=broken_registry, secret_box=hub.box))
    event_id = add_event(hub)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(
            "/workspaces/acme/replay", headers=hub.auth("operator"), json={"event_ids": [event_id]}
        )
    body = is_problem(r, 500)
    for leak in ("Traceback", "RuntimeError", "secret internals", 'File "'):
        assert leak not in r.text
    assert set(body) == {"type", "title", "status", "detail"}
    # Validation errors name each bad field and what is expected.
    r = hub.client.get("/workspaces/acme/deliveries?limit=0&state=lost", headers=hub.auth("viewer"))
    issues = {i["field"]: i for i in is_problem(r, 422)["issues"]}
    assert set(issues) == {"limit", "state"}
    assert issues["limit"]["expected"] == "a number >= 1"
    assert all(i["message"] for i in issues.values())
    # Unknown paths and missing rows are problems too.
    is_problem(hub.client.get("/nowhere"), 404)
    is_problem(hub.client.get("/workspaces/acme/deliveries/999", headers=hub.auth("viewer")), 404)


def test_openapi_document_lists_the_routes(hub: Hub) -> None:
    outer = Starlette(routes=[Mount("/api/v1", app=hub.app)])
    with TestClient(outer) as client:
        r = client.get("/api/v1/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        assert client.get("/api/v1/docs").status_code == 200
    paths = doc["paths"]
    for path, method in [
        ("/workspaces/{ws}", "get"),
        ("/workspaces/{ws}/connections/{name}", "put"),
        ("/workspaces/{ws}/flows/{name}", "put"),
        ("/workspaces/{ws}/events", "get"),
        ("/workspaces/{ws}/deliveries/{delivery_id}", "get"),
        ("/workspaces/{ws}/attempts", "get"),
        ("/workspaces/{ws}/exceptions/{exception_id}/retry", "post"),
        ("/workspaces/{ws}/exceptions/retry-all", "post"),
        ("/workspaces/{ws}/xrefs", "get"),
        ("/workspaces/{ws}/replay", "post"),
        ("/workspaces/{ws}/kpis", "get"),
    ]:
        assert method in paths[path], (path, method)
        assert paths[path][method]["security"], (path, method)
    api_routes = {r.path for r in hub.app.routes if isinstance(r, APIRoute)}
    assert api_routes == set(paths)
