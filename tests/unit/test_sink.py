"""The reference sink keeps its wire contract: dedup, replay, faults, auth, rate limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from crossdock.emulators.sink import FaultRule, FaultRuleError, SinkState, create_sink_app


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.fixture
def state() -> SinkState:
    """A fresh sink state with reproducible fault probabilities."""
    return SinkState(seed=7)


@pytest.fixture
async def client(state: SinkState) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for a sink without auth or rate limit."""
    app = create_sink_app(state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sink") as c:
        yield c


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sink")


async def _post(
    c: httpx.AsyncClient, body: Any, key: str | None = "k1", collection: str = "orders"
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await c.post(f"/records/{collection}", json=body, headers=headers)


def _is_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert set(doc) == {"type", "title", "status", "detail"}
    assert doc["status"] == status


# -- idempotency ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_same_idempotency_key_has_one_effect(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    first = await _post(client, {"order": 1001})
    again = await _post(client, {"order": 1001})
    assert first.status_code == 201
    assert first.json() == {
        "id": "orders-1",
        "collection": "orders",
        "idempotency_key": "k1",
        "body": {"order": 1001},
    }
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert len(state.effects) == 1
    assert state.stats()["replays"] == 1


@pytest.mark.anyio
async def test_replay_returns_the_original_response_after_later_updates(
    client: httpx.AsyncClient,
) -> None:
    created = await _post(client, {"v": 1})
    await client.put("/records/orders/orders-1", json={"v": 2}, headers={"Idempotency-Key": "u"})
    replay = await _post(client, {"v": 1})
    assert replay.status_code == 200
    assert replay.json() == created.json()


@pytest.mark.anyio
async def test_distinct_keys_create_distinct_records(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    ids = [(await _post(client, {"n": i}, key=f"k{i}")).json()["id"] for i in range(3)]
    other = await _post(client, {"n": 0}, key="x", collection="invoices")
    assert ids == ["orders-1", "orders-2", "orders-3"]
    assert other.json()["id"] == "invoices-1"
    assert len(state.effects) == 4


@pytest.mark.anyio
async def test_reused_key_with_different_body_is_422_without_effect(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    await _post(client, {"v": 1})
    r = await _post(client, {"v": 2})
    _is_problem(r, 422)
    assert "k1" in r.json()["detail"]
    assert len(state.effects) == 1
    assert state.stats()["conflicts"] == 1


@pytest.mark.anyio
async def test_reused_key_on_another_collection_is_422(client: httpx.AsyncClient) -> None:
    await _post(client, {"v": 1})
    _is_problem(await _post(client, {"v": 1}, collection="invoices"), 422)


@pytest.mark.anyio
async def test_same_body_with_other_key_order_is_a_replay(client: httpx.AsyncClient) -> None:
    await client.post("/records/orders", content=b'{"a":1,"b":2}', headers={"Idempotency-Key": "k"})
    r = await client.post(
        "/records/orders", content=b'{"b": 2, "a": 1}', headers={"Idempotency-Key": "k"}
    )
    assert r.status_code == 200


@pytest.mark.anyio
async def test_invalid_json_is_400_problem_without_effect(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    r = await client.post("/records/orders", content=b"{not json", headers={"Idempotency-Key": "k"})
    _is_problem(r, 400)
    assert state.effects == []
    # the key was not consumed by the failed request
    assert (await _post(client, {"ok": True}, key="k")).status_code == 201


@pytest.mark.anyio
async def test_request_without_key_is_applied_every_time(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    assert (await _post(client, {"v": 1}, key=None)).status_code == 201
    assert (await _post(client, {"v": 1}, key=None)).status_code == 201
    assert len(state.effects) == 2


@pytest.mark.anyio
async def test_update_is_idempotent_and_unknown_id_is_404(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    await _post(client, {"v": 1})
    h = {"Idempotency-Key": "u1"}
    first = await client.put("/records/orders/orders-1", json={"v": 2}, headers=h)
    again = await client.put("/records/orders/orders-1", json={"v": 2}, headers=h)
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert [e["method"] for e in state.effects] == ["POST", "PUT"]
    _is_problem(
        await client.put("/records/orders/orders-9", json={}, headers={"Idempotency-Key": "u2"}),
        404,
    )
    got = await client.get("/records/orders/orders-1")
    assert got.status_code == 200
    assert got.json()["body"] == {"v": 2}
    _is_problem(await client.get("/records/orders/orders-9"), 404)


@pytest.mark.anyio
async def test_verification_lookup_finds_the_stored_response_by_key(
    client: httpx.AsyncClient,
) -> None:
    created = await _post(client, {"v": 1}, key="abc")
    found = await client.get("/records/orders/by-key/abc")
    assert found.status_code == 200
    assert found.json() == created.json()
    _is_problem(await client.get("/records/orders/by-key/unknown"), 404)
    _is_problem(await client.get("/records/invoices/by-key/abc"), 404)


@pytest.mark.anyio
async def test_effects_are_listed_in_arrival_order_with_key_and_correlation_id(
    client: httpx.AsyncClient,
) -> None:
    for i in range(3):
        await client.post(
            "/records/orders" if i != 1 else "/records/stock",
            json={"n": i},
            headers={"Idempotency-Key": f"k{i}", "X-Correlation-Id": f"c{i}", "X-Other": "no"},
        )
    effects = (await client.get("/_sink/effects")).json()
    assert [e["seq"] for e in effects] == [1, 2, 3]
    assert [e["body"]["n"] for e in effects] == [0, 1, 2]
    assert effects[0]["headers"] == {"Idempotency-Key": "k0", "X-Correlation-Id": "c0"}
    assert set(effects[0]) == {
        "seq",
        "collection",
        "id",
        "idempotency_key",
        "method",
        "body",
        "headers",
        "received_at",
    }
    only = (await client.get("/_sink/effects", params={"collection": "orders"})).json()
    assert [e["collection"] for e in only] == ["orders", "orders"]
    later = (await client.get("/_sink/effects", params={"since": 2})).json()
    assert [e["seq"] for e in later] == [3]


# -- auth and rate limit ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_token_is_required_when_configured() -> None:
    state = SinkState()
    async with _client(create_sink_app(state, token="s3cret")) as c:
        _is_problem(await _post(c, {"v": 1}), 401)
        r = await c.post("/records/orders", json={}, headers={"Authorization": "Bearer wrong"})
        _is_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert state.effects == []
        ok = await c.post(
            "/records/orders",
            json={},
            headers={"Authorization": "Bearer s3cret", "Idempotency-Key": "k"},
        )
        assert ok.status_code == 201
        assert (await c.get("/_sink/stats")).status_code == 200  # control API needs no token


@pytest.mark.anyio
async def test_rate_limit_answers_429_with_integer_retry_after_and_no_effect() -> None:
    state = SinkState()
    async with _client(create_sink_app(state, rate_limit=0.5, burst=2)) as c:
        assert (await _post(c, {}, key="a")).status_code == 201
        assert (await _post(c, {}, key="b")).status_code == 201
        limited = await _post(c, {}, key="c")
        _is_problem(limited, 429)
        assert limited.headers["retry-after"] == "2"
        assert len(state.effects) == 2
        assert state.lookup("orders", "c") is None
        assert state.stats()["rate_limited"] == 1


@pytest.mark.anyio
async def test_rate_limit_bucket_refills_at_its_rate() -> None:
    async with _client(create_sink_app(SinkState(), rate_limit=20, burst=1)) as c:
        assert (await _post(c, {}, key="a")).status_code == 201
        assert (await _post(c, {}, key="b")).status_code == 429
        await anyio.sleep(0.08)
        assert (await _post(c, {}, key="b")).status_code == 201


@pytest.mark.anyio
async def test_rate_limit_can_be_set_through_the_control_api(
    client: httpx.AsyncClient,
) -> None:
    r = await client.put("/_sink/rate-limit", json={"per_second": 1, "burst": 1})
    assert r.json() == {"per_second": 1.0, "burst": 1.0}
    assert (await _post(client, {}, key="a")).status_code == 201
    assert (await _post(client, {}, key="b")).status_code == 429
    assert (await client.put("/_sink/rate-limit", content=b"null")).json() is None
    assert (await _post(client, {}, key="b")).status_code == 201
    assert (await client.put("/_sink/rate-limit", json={"burst": 1})).status_code == 400


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_fault_answers_before_any_effect(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    r = await client.post("/_sink/faults", json={"kind": "status", "status": 503, "count": 1})
    assert r.status_code == 201
    assert r.json()["id"] == 1
    failed = await _post(client, {"v": 1})
    _is_problem(failed, 503)
    assert state.effects == []
    assert (await _post(client, {"v": 1})).status_code == 201  # count exhausted, key unused
    assert state.stats()["faults_injected"] == 1
    assert (await client.get("/_sink/faults")).json()[0]["applied"] == 1


@pytest.mark.anyio
async def test_status_fault_can_be_any_4xx_with_retry_after(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "status", "status": 409, "retry_after": 1.2})
    r = await _post(client, {})
    _is_problem(r, 409)
    assert r.headers["retry-after"] == "2"


@pytest.mark.anyio
async def test_fault_filters_by_collection_and_method(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "status", "status": 500, "collection": "stock", "methods": ["POST"]})
    assert (await _post(client, {}, key="a", collection="orders")).status_code == 201
    assert (await _post(client, {}, key="b", collection="stock")).status_code == 500
    assert (await client.get("/records/stock/by-key/b")).status_code == 404  # GET unaffected


@pytest.mark.anyio
async def test_fault_probability_is_honoured(client: httpx.AsyncClient, state: SinkState) -> None:
    state.add_fault({"kind": "status", "status": 502, "probability": 0.3})
    codes = [(await _post(client, {}, key=f"k{i}")).status_code for i in range(200)]
    failed = codes.count(502)
    assert 30 < failed < 90
    assert codes.count(201) == 200 - failed == len(state.effects)


@pytest.mark.anyio
async def test_rate_limit_fault_answers_429_with_retry_after(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "rate_limit", "retry_after": 2.5, "count": 1})
    r = await _post(client, {})
    _is_problem(r, 429)
    assert r.headers["retry-after"] == "3"
    assert state.effects == []


@pytest.mark.anyio
async def test_slow_fault_delays_then_applies(client: httpx.AsyncClient, state: SinkState) -> None:
    state.add_fault({"kind": "slow", "delay": 0.2})
    t0 = time.monotonic()
    r = await _post(client, {})
    assert time.monotonic() - t0 >= 0.19
    assert r.status_code == 201
    assert len(state.effects) == 1


@pytest.mark.anyio
async def test_slow_fault_lets_a_later_rule_decide(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "slow", "delay": 0.05})
    state.add_fault({"kind": "status", "status": 503})
    _is_problem(await _post(client, {}), 503)
    assert state.stats()["faults_by_kind"] == {"slow": 1, "status": 1}


@pytest.mark.anyio
async def test_timeout_after_effect_records_the_effect_while_the_client_waits(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    """The uncertain outcome: the client gives up, yet the sink applied the request."""
    state.add_fault({"kind": "timeout", "delay": 5, "after_effect": True, "count": 1})
    with anyio.move_on_after(0.2) as scope:
        await _post(client, {"v": 1}, key="uncertain")
    assert scope.cancelled_caught
    assert len(state.effects) == 1
    verified = await client.get("/records/orders/by-key/uncertain")
    assert verified.status_code == 200
    assert verified.json()["body"] == {"v": 1}
    retry = await _post(client, {"v": 1}, key="uncertain")
    assert retry.status_code == 200
    assert len(state.effects) == 1


@pytest.mark.anyio
async def test_timeout_after_effect_answers_normally_if_the_client_waits(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "timeout", "delay": 0.1, "after_effect": True})
    r = await _post(client, {"v": 1})
    assert r.status_code == 201
    assert len(state.effects) == 1


@pytest.mark.anyio
async def test_timeout_without_effect_records_nothing(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "timeout", "delay": 5, "after_effect": False, "count": 1})
    with anyio.move_on_after(0.2):
        await _post(client, {"v": 1}, key="lost")
    assert state.effects == []
    assert (await client.get("/records/orders/by-key/lost")).status_code == 404
    state.add_fault({"kind": "timeout", "delay": 0.05, "after_effect": False, "count": 1})
    _is_problem(await _post(client, {"v": 1}, key="lost"), 504)
    assert state.effects == []


@pytest.mark.anyio
async def test_outage_window_fails_every_request_then_recovers(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    state.add_fault({"kind": "outage", "duration": 0.3})
    for i in range(5):
        _is_problem(await _post(client, {}, key=f"k{i}"), 503)
    assert (await client.get("/records/orders/by-key/k0")).status_code == 503
    assert state.effects == []
    await anyio.sleep(0.35)
    assert (await _post(client, {}, key="k0")).status_code == 201
    assert (await client.get("/_sink/faults")).json()[0]["active"] is False


@pytest.mark.anyio
async def test_outage_can_start_later(client: httpx.AsyncClient, state: SinkState) -> None:
    state.add_fault({"kind": "outage", "start_in": 0.15, "duration": 10})
    assert (await _post(client, {}, key="a")).status_code == 201
    await anyio.sleep(0.2)
    assert (await _post(client, {}, key="b")).status_code == 503


@pytest.mark.anyio
async def test_faults_can_be_listed_added_in_bulk_and_cleared(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    r = await client.post(
        "/_sink/faults", json=[{"kind": "slow", "delay": 0}, {"kind": "status", "status": 500}]
    )
    assert [f["kind"] for f in r.json()] == ["slow", "status"]
    assert len((await client.get("/_sink/faults")).json()) == 2
    assert (await client.delete("/_sink/faults")).json() == {"cleared": 2}
    assert (await client.get("/_sink/faults")).json() == []
    assert (await _post(client, {})).status_code == 201


@pytest.mark.anyio
@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"kind": "status", "status": 200},
        {"kind": "status", "propability": 0.5},
        {"kind": "status", "probability": 2},
        {"kind": "slow", "delay": -1},
        {"kind": "outage", "status": 500},
        {"kind": "status", "count": 0},
    ],
)
async def test_invalid_fault_rule_is_rejected(
    client: httpx.AsyncClient, rule: dict[str, Any]
) -> None:
    _is_problem(await client.post("/_sink/faults", json=rule), 400)
    with pytest.raises(FaultRuleError):
        FaultRule.from_dict(rule)


# -- control, stats, routing ------------------------------------------------------------------


@pytest.mark.anyio
async def test_reset_forgets_records_keys_effects_stats_and_faults(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    await _post(client, {"v": 1})
    state.add_fault({"kind": "status", "status": 500, "collection": "other"})
    assert (await client.post("/_sink/reset")).status_code == 200
    assert state.effects == []
    assert state.faults == []
    stats = (await client.get("/_sink/stats")).json()
    assert stats["requests_total"] == 0
    assert stats["effects"] == 0
    assert (await client.get("/records/orders/by-key/k1")).status_code == 404
    created = await _post(client, {"v": 2})
    assert created.status_code == 201
    assert created.json()["id"] == "orders-1"


@pytest.mark.anyio
async def test_stats_count_requests_effects_replays_and_statuses(
    client: httpx.AsyncClient, state: SinkState
) -> None:
    await _post(client, {"v": 1})
    await _post(client, {"v": 1})
    await _post(client, {"v": 2})
    state.add_fault({"kind": "status", "status": 503, "count": 1})
    await _post(client, {"v": 1}, key="z")
    stats = (await client.get("/_sink/stats")).json()
    assert stats["requests_total"] == 4
    assert stats["effects"] == 1
    assert stats["replays"] == 1
    assert stats["by_status"] == {"200": 1, "201": 1, "422": 1, "503": 1}
    assert stats["faults_injected"] == 1
    assert stats["faults_by_kind"] == {"status": 1}


@pytest.mark.anyio
async def test_unknown_routes_and_methods_answer_problems(client: httpx.AsyncClient) -> None:
    _is_problem(await client.get("/nowhere"), 404)
    _is_problem(await client.get("/records/orders/a/b/c"), 404)
    not_allowed = await client.delete("/records/orders/orders-1")
    _is_problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, PUT"
    _is_problem(await client.get("/records/orders"), 405)
    _is_problem(await client.get("/_sink/nothing"), 404)
    assert (await client.get("/_sink/health")).json() == {"ok": True}


@pytest.mark.anyio
async def test_percent_encoded_ids_are_decoded(client: httpx.AsyncClient) -> None:
    await _post(client, {}, key="a/b c")
    assert (await client.get("/records/orders/by-key/a%2Fb%20c")).status_code == 200


def test_python_api_effects_for_and_lookup() -> None:
    state = SinkState()
    state.create("orders", {"v": 1}, "k1", "corr")
    state.create("stock", {"v": 2}, "k2")
    assert [e["id"] for e in state.effects_for("stock")] == ["stock-1"]
    assert len(state.effects_for()) == 2
    assert state.lookup("orders", "k1") == {
        "id": "orders-1",
        "collection": "orders",
        "idempotency_key": "k1",
        "body": {"v": 1},
    }
    assert state.lookup("stock", "k1") is None
    rule = state.add_fault({"kind": "outage"})
    assert rule.id == 1
    assert state.clear_faults() == 1
