"""ShipEngine connector and emulator: conformance, the OpenAPI contract, behaviour."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jsonschema
import pytest

from crossdock.connectors.shipengine import ShipEngineConnector
from crossdock.connectors.shipengine.webhooks import KEYS
from crossdock.emulators.shipengine import create_app
from crossdock.model import Shipment, TrackingStatus, tracking_status_from_shipengine
from crossdock.sdk import ActionContext, ActionRefused, Cursor, SignatureRejected, VendorError
from crossdock.sdk.actions import run_action
from crossdock.sdk.conformance import ConformanceHarness, ConnectorConformance, WriteCase
from crossdock.testing.specs import shipengine_openapi

API_KEY = "TEST_crossdock_emulator_key"
BASE = "http://vendor"

SHIP_FROM = {
    "name": "Crossdock Warehouse",
    "company": "Crossdock Demo",
    "line1": "1 Dock Street",
    "city": "Austin",
    "region": "TX",
    "postal_code": "78701",
    "country_code": "US",
    "phone": "+1 512 555 0100",
}


def settings(**over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "base_url": BASE,
        "api_key": API_KEY,
        "carrier_id": "se-101",
        "ship_from": SHIP_FROM,
    }
    out.update(over)
    return out


def shipment(n: int = 1, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": f"wms-sh-{n}",
        "order": {"id": f"500{n}", "number": f"#100{n}"},
        "lines": [{"sku": "TEE-BLK-M", "quantity": 2}],
        "ship_to": {
            "name": "Ada Lovelace",
            "line1": "12 Analytical Way",
            "city": "Portland",
            "region": "OR",
            "postal_code": "97201",
            "country_code": "US",
        },
        "parcels": [{"weight": {"value": "0.38", "unit": "kg"}}],
    }
    rec.update(over)
    return rec


def ctx(record: dict[str, Any], key: str, **kw: Any) -> ActionContext:
    return ActionContext(record=record, idempotency_key=key, record_key=str(record.get("id")), **kw)


# --- the OpenAPI document as JSON Schema ----------------------------------------------------


def _resolve(ref: str) -> Any:
    node: Any = shipengine_openapi()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if key == "properties":
            props = dst.setdefault("properties", {})
            for name, schema in value.items():
                if name in props and props[name] != schema:
                    props[name] = {"allOf": [props[name], schema]}
                else:
                    props[name] = schema
        elif key == "required":
            dst["required"] = sorted(set(dst.get("required", [])) | set(value))
        elif key == "additionalProperties":
            if value is False or dst.get("additionalProperties") is False:
                dst["additionalProperties"] = False
            else:
                dst.setdefault("additionalProperties", value)
        elif key in ("oneOf", "anyOf"):
            dst.setdefault("allOf", []).append({key: value})
        else:
            dst.setdefault(key, value)


def to_json_schema(node: Any, stack: tuple[str, ...] = ()) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12: inline ``$ref``s, merge ``allOf`` (the
    spec puts ``additionalProperties: false`` beside ``allOf``, which plain JSON Schema
    would read as "no properties at all"), ``nullable`` -> a ``null`` type, boolean
    ``exclusiveMinimum`` -> numeric."""
    if isinstance(node, list):
        return [to_json_schema(n, stack) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        return {} if ref in stack else to_json_schema(_resolve(ref), (*stack, ref))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("description", "example", "examples", "discriminator", "xml", "externalDocs"):
            continue
        if key == "properties":
            out[key] = {k: to_json_schema(v, stack) for k, v in value.items()}
        elif key in ("enum", "required", "default"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = to_json_schema(value, stack)
    if "allOf" in out:
        branches = out.pop("allOf")
        merged: dict[str, Any] = {}
        _merge(merged, out)
        for branch in branches:
            _merge(merged, branch)
        out = merged
    if out.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum", 0)
    elif out.get("exclusiveMinimum") is False:
        out.pop("exclusiveMinimum")
    if out.pop("nullable", False):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif kind is None:
            out = {"anyOf": [{"type": "null"}, out]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def _operations() -> list[tuple[str, re.Pattern[str], str]]:
    ops = []
    for path, item in shipengine_openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((path, pattern, method))
    # Literal segments win over templated ones (external_shipment_id vs {label_id}).
    ops.sort(key=lambda o: o[0].count("{"))
    return ops


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec's path template and operation object for a request, or AssertionError."""
    for template, pattern, m in _operations():
        if m == method.lower() and pattern.match(path):
            return template, shipengine_openapi()["paths"][template][m]
    raise AssertionError(f"{method} {path} is not an operation of the ShipEngine OpenAPI")


def _params(template: str, op: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    item = shipengine_openapi()["paths"][template]
    out = {}
    for p in [*item.get("parameters", []), *op.get("parameters", [])]:
        p = _resolve(p["$ref"]) if "$ref" in p else p
        out[(p["in"], p["name"])] = p
    return out


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return value == "true"
    if kind == "array":
        return [value]
    return value


def check_request(method: str, url: str, body: bytes) -> str:
    """Validate one request against the spec; return the operation's path template."""
    parts = urlsplit(url)
    template, op = operation(method, parts.path)
    params = _params(template, op)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        spec = params.get(("query", name))
        assert spec is not None, f"{method} {template}: query parameter {name!r} is not declared"
        schema = to_json_schema(spec.get("schema", {}))
        jsonschema.validate(_coerce(value, schema), schema)
    for (where, name), spec in params.items():
        if where == "query" and spec.get("required"):
            assert name in dict(parse_qsl(parts.query)), f"{template}: {name} is required"
    request_body = op.get("requestBody")
    if body:
        assert request_body is not None, f"{method} {template} takes no body"
        schema = to_json_schema(request_body["content"]["application/json"]["schema"])
        jsonschema.validate(json.loads(body), schema)
    else:
        assert not (request_body or {}).get("required"), f"{method} {template} needs a body"
    return template


def check_response(method: str, url: str, status: int, body: bytes) -> None:
    """Validate an emulator answer against the operation's response schema."""
    template, op = operation(method, urlsplit(url).path)
    responses = op["responses"]
    answer = responses.get(str(status))
    if answer is None:
        # 401/429 are not listed per operation; ShipEngine answers them in its error shape.
        answer = responses.get("400") if status >= 400 else None
    assert answer is not None, f"{method} {template}: HTTP {status} is not in the spec"
    if "$ref" in answer:
        answer = _resolve(answer["$ref"])
    content = answer.get("content", {}).get("application/json")
    if content is None:
        return
    jsonschema.validate(json.loads(body), to_json_schema(content["schema"]))


# --- harness -------------------------------------------------------------------------------


@dataclass
class Captured:
    method: str
    url: str
    body: bytes
    status: int | None = None
    answer: bytes = b""


@dataclass
class Env:
    app: Any
    client: httpx.AsyncClient
    connector: ShipEngineConnector
    sent: list[Captured] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.app.state.emulator

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        r = await self.client.request(method, path, json=payload)
        assert r.status_code < 300, r.text
        return r.json()


class TimeoutTransport(httpx.AsyncBaseTransport):
    """ASGITransport with a read timeout (ASGITransport ignores timeouts)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await asyncio.wait_for(
                self.inner.handle_async_request(request), timeout=self.seconds
            )
        except TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None


async def make_env(
    stack: contextlib.AsyncExitStack,
    *,
    connector_settings: dict[str, Any] | None = None,
    timeout: float | None = None,
    **options: Any,
) -> Env:
    options.setdefault("tracking_interval", 0.0)
    options.setdefault("seed", 7)
    app = create_app(**options)
    sent: list[Captured] = []

    async def on_request(request: httpx.Request) -> None:
        if request.url.path.startswith("/v1/"):
            sent.append(Captured(request.method, str(request.url), request.content))

    async def on_response(response: httpx.Response) -> None:
        req = response.request
        if req.url.path.startswith("/v1/"):
            await response.aread()
            for c in reversed(sent):
                if c.url == str(req.url) and c.status is None:
                    c.status, c.answer = response.status_code, response.content
                    break

    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
    if timeout is not None:
        transport = TimeoutTransport(transport, timeout)
    client = httpx.AsyncClient(
        transport=transport,
        base_url=BASE,
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    await stack.enter_async_context(client)
    stack.push_async_callback(app.state.emulator.aclose)
    conn = ShipEngineConnector(
        settings(**(connector_settings or {})), http=client, connection="shipengine/test"
    )
    await conn.refresh_keys(force=True)
    return Env(app, client, conn, sent)


def run(test: Callable[[contextlib.AsyncExitStack], Awaitable[None]]) -> None:
    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            await test(stack)

    asyncio.run(main())


async def buy(env: Env, n: int = 1, **over: Any) -> tuple[str, dict[str, Any]]:
    outcome, result = await run_action(
        env.connector.actions["create_label"], ctx(shipment(n, **over), f"key-{n}")
    )
    assert outcome.outcome.value == "success", outcome
    assert result is not None and result.external_id
    return result.external_id, result.record


# --- conformance ---------------------------------------------------------------------------


class TestShipEngineConformance(ConnectorConformance):
    connector_class = ShipEngineConnector

    async def make_harness(self, stack: contextlib.AsyncExitStack) -> ConformanceHarness:
        env = await make_env(stack)
        st = env.state
        counter = {"n": 100}

        async def seed(name: str) -> None:
            counter["n"] += 1
            label_id, _ = await buy(env, counter["n"])
            await env.control("POST", "/_emulator/advance", {"label_id": label_id})

        async def touch(name: str) -> None:
            await env.control("POST", "/_emulator/advance", {})

        def webhook() -> tuple[dict[str, str], bytes]:
            label = next(iter(st.labels.values()))
            body = st.track_payload(label, BASE)
            return {"content-type": "application/json", **st.sign(body)}, body

        await buy(env, 99)  # a label for the sample webhook
        void_ctx = ctx(shipment(98), "void-98")

        async def prepare_void() -> None:
            label_id, _ = await buy(env, 98)
            void_ctx.xref = label_id

        return ConformanceHarness(
            connector=env.connector,
            settings=settings(),
            webhook=webhook,
            seed=seed,
            touch=touch,
            writes=[
                WriteCase("create_label", ctx(shipment(1), "conf-1"), lambda: len(st.labels)),
                WriteCase(
                    "void_label",
                    void_ctx,
                    lambda: sum(1 for lb in st.labels.values() if lb.status == "voided"),
                    prepare=prepare_void,
                ),
            ],
        )


# --- the contract: every request valid against openapi.yaml ---------------------------------


def test_every_request_the_connector_sends_is_valid_against_the_openapi_spec() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack, connector_settings={"page_size": 2})
        conn = env.connector
        await conn.subscribe_tracking("https://hub.example/hooks/acme/shipengine")
        await conn.subscribe_tracking("https://hub.example/hooks/acme/shipengine")
        ids = [await buy(env, n) for n in (1, 2, 3)]
        await buy(env, 1)  # a repeat: found by external_shipment_id, nothing bought
        await env.control("POST", "/_emulator/advance", {})
        _, record = await buy(env, 4)
        outcome, _ = await run_action(
            conn.actions["void_label"], ctx({**record, "id": "wms-sh-4"}, "void-4")
        )
        assert outcome.outcome.value == "success", outcome
        events = [ev async for ev in conn.streams["tracking"].read(Cursor("1970-01-01T00:00:00Z"))]
        assert {ev.record["order"]["id"] for ev in events} == {"5001", "5002", "5003"}
        assert await conn.check()
        assert len(env.state.labels) == 4 and len(ids) == 3

        operations = set()
        assert env.sent
        for c in env.sent:
            operations.add(f"{c.method} {check_request(c.method, c.url, c.body)}")
            assert c.status is not None
            check_response(c.method, c.url, c.status, c.answer)
        assert {
            "POST /v1/labels",
            "GET /v1/labels",
            "GET /v1/labels/external_shipment_id/{external_shipment_id}",
            "GET /v1/labels/{label_id}/track",
            "PUT /v1/labels/{label_id}/void",
            "GET /v1/environment/webhooks",
            "POST /v1/environment/webhooks",
            "GET /v1/carriers",
        } <= operations, operations
        # The list was read page by page (page_size 2, 3 live labels + 1 voided).
        pages = [c for c in env.sent if c.method == "GET" and urlsplit(c.url).path == "/v1/labels"]
        assert len([c for c in pages if "created_at_start" in c.url]) >= 2

    run(test)


def test_contract_checker_is_not_vacuous() -> None:
    good = {
        "shipment": {
            "carrier_id": "se-101",
            "service_code": "usps_priority_mail",
            "ship_to": {"name": "A", "address_line1": "1 St", "city_locality": "X",
                        "state_province": "OR", "postal_code": "1", "country_code": "US"},
            "packages": [{"weight": {"value": 1, "unit": "pound"}}],
        }
    }  # fmt: skip
    check_request("POST", f"{BASE}/v1/labels", json.dumps(good).encode())
    typo = copy.deepcopy(good)
    typo["shipment"]["ship_to"]["zip"] = "97201"
    no_city = copy.deepcopy(good)
    del no_city["shipment"]["ship_to"]["city_locality"]
    zero = copy.deepcopy(good)
    zero["shipment"]["packages"][0]["weight"]["value"] = 0
    for bad in (typo, no_city, zero):
        with pytest.raises(jsonschema.ValidationError):
            check_request("POST", f"{BASE}/v1/labels", json.dumps(bad).encode())
    with pytest.raises(AssertionError):
        check_request("GET", f"{BASE}/v1/labels?colour=red", b"")
    with pytest.raises(AssertionError):
        check_request("POST", f"{BASE}/v1/labelz", b"{}")


def test_emulator_error_answers_match_the_spec_error_shape() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        body = {"shipment": {"carrier_id": "se-101", "service_code": "usps_priority_mail"}}
        r = await env.client.post("/v1/labels", json=body, headers={"API-Key": API_KEY})
        assert r.status_code == 400
        check_response("POST", f"{BASE}/v1/labels", 400, r.content)
        r = await env.client.get("/v1/labels/se-999/track", headers={"API-Key": API_KEY})
        assert r.status_code == 404
        check_response("GET", f"{BASE}/v1/labels/se-999/track", 404, r.content)

    run(test)


# --- connector behaviour ---------------------------------------------------------------------


def test_create_label_returns_the_shipment_with_label_and_tracking() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        label_id, record = await buy(env, 1)
        rec = Shipment.model_validate(record)
        assert rec.id == "wms-sh-1" and rec.order.id == "5001"
        assert rec.carrier == "stamps_com" and rec.service == "usps_priority_mail"
        assert rec.tracking_number and rec.tracking_url and rec.status.value == "label_created"
        assert rec.label is not None and rec.label.format.value == "pdf" and rec.label.url
        assert rec.ship_from is None  # the settings' address was used, not copied in
        label = env.state.labels[label_id]
        assert label.external_order_id == "5001"
        assert label.shipment["ship_from"]["phone"] == SHIP_FROM["phone"]
        assert label.packages[0]["weight"] == {"value": 0.38, "unit": "kilogram"}
        r = await env.client.get(rec.label.url)
        assert r.status_code == 200 and r.content.startswith(b"%PDF")

    run(test)


def test_uncertain_create_is_verified_by_lookup_and_buys_once() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack, timeout=0.3)
        await env.control(
            "POST",
            "/_emulator/faults",
            {"kind": "timeout", "delay": 2, "after_effect": True, "path": "/v1/labels",
             "methods": ["POST"], "count": 1},
        )  # fmt: skip
        action = env.connector.actions["create_label"]
        outcome, result = await run_action(action, ctx(shipment(1), "uncertain-1"))
        assert outcome.category == "verified", outcome
        assert result is not None and result.verified and result.external_id
        assert len(env.state.labels) == 1
        again, second = await run_action(action, ctx(shipment(1), "uncertain-1"))
        assert again.outcome.value == "success" and second is not None
        assert second.external_id == result.external_id and len(env.state.labels) == 1

    run(test)


def test_missing_postal_code_is_refused_as_an_address_problem_in_plain_words() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        rec = shipment(1)
        del rec["ship_to"]["postal_code"]
        outcome, result = await run_action(env.connector.actions["create_label"], ctx(rec, "k"))
        assert result is None and outcome.outcome.value == "permanent"
        assert outcome.category == "address"
        assert outcome.reason == (
            "The ship-to address has no postal code, so the carrier cannot make a label."
        )
        assert "postal code" in outcome.fix and "retry" in outcome.fix
        # The emulator answered ShipEngine's error shape naming the field.
        answer = json.loads(env.sent[-1].answer)
        assert answer["errors"][0]["field_name"] == "shipment.ship_to.postal_code"
        with pytest.raises(ActionRefused):
            await env.connector.actions["create_label"].perform(ctx(rec, "k"))

    run(test)


def test_missing_ship_from_phone_is_refused_with_a_settings_fix() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        no_phone = {k: v for k, v in SHIP_FROM.items() if k != "phone"}
        env = await make_env(stack, connector_settings={"ship_from": no_phone})
        outcome, _ = await run_action(env.connector.actions["create_label"], ctx(shipment(), "k"))
        assert outcome.category == "address"
        assert outcome.reason.startswith("The ship-from address has no phone number")
        assert "settings" in outcome.fix

    run(test)


def test_parcel_over_the_carrier_weight_limit_is_refused_by_the_carrier() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        anvil = shipment(1, lines=[{"sku": "ANVIL-50KG", "quantity": 1}],
                         parcels=[{"weight": {"value": "50", "unit": "kg"}}])  # fmt: skip
        outcome, result = await run_action(env.connector.actions["create_label"], ctx(anvil, "k"))
        assert result is None and outcome.category == "carrier_refused"
        assert "will not take this parcel" in outcome.reason and "70 lb" in outcome.reason
        assert "lighter parcels" in outcome.fix
        assert env.state.labels == {}

    run(test)


def test_void_label_by_tracking_number_and_twice_is_one_void() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        label_id, record = await buy(env, 1)
        action = env.connector.actions["void_label"]
        first, r1 = await run_action(action, ctx(record, "v"))
        second, r2 = await run_action(action, ctx(record, "v"))
        assert first.outcome.value == second.outcome.value == "success"
        assert r1 is not None and r2 is not None
        assert r1.external_id == r2.external_id == label_id
        assert r1.record["status"] == "cancelled"
        assert env.state.labels[label_id].status == "voided"
        puts = [c for c in env.sent if c.method == "PUT"]
        assert len(puts) == 1

    run(test)


def test_void_of_a_scanned_label_is_refused_by_the_carrier() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        label_id, record = await buy(env, 1)
        await env.control("POST", "/_emulator/advance", {"label_id": label_id})
        outcome, _ = await run_action(
            env.connector.actions["void_label"], ctx(record, "v", xref=label_id)
        )
        assert outcome.category == "carrier_refused" and "cannot be voided" in outcome.fix

    run(test)


def test_void_without_any_label_reference_is_a_lookup_refusal() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        outcome, _ = await run_action(
            env.connector.actions["void_label"], ctx(shipment(1, tracking_number="NOPE"), "v")
        )
        assert outcome.category == "lookup"

    run(test)


@pytest.mark.parametrize("code", ["UN", "AC", "IT", "DE", "EX", "AT", "NY", "SP"])
def test_tracking_status_is_normalized_for_every_status_code(code: str) -> None:
    expected = tracking_status_from_shipengine(code)

    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        label_id, _ = await buy(env, 1)
        await env.control("POST", "/_emulator/advance", {"label_id": label_id, "status_code": code})
        stream = env.connector.streams["tracking"]
        events = [ev async for ev in stream.read(Cursor(stream.initial_cursor))]
        assert len(events) == 1
        rec = Shipment.model_validate(events[0].record)
        assert rec.events[-1].status is expected and rec.events[-1].raw_status == code
        assert rec.order.id == "5001" and rec.carrier == "stamps_com"
        # The webhook of the same scan says the same.
        label = env.state.labels[label_id]
        body = env.state.track_payload(label, BASE)
        headers = env.state.sign(body)
        wh = env.connector.webhooks
        assert wh is not None
        wh.verify(headers, body)
        parsed = wh.parse(headers, body)
        assert parsed[0].record["events"][-1]["status"] == expected.value
        assert (parsed[0].record_key, parsed[0].version) == (
            events[0].record_key,
            events[0].version,
        )

    run(test)
    assert expected in set(TrackingStatus)


def test_unknown_status_code_maps_to_unknown_not_an_error() -> None:
    from crossdock.connectors.shipengine.mappers import normalize_status

    assert normalize_status("ZZ") is TrackingStatus.UNKNOWN


def test_tracking_stream_yields_each_scan_once_and_follows_progress() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        label_id, _ = await buy(env, 1)
        await buy(env, 2)  # no scan yet: nothing to report
        stream = env.connector.streams["tracking"]
        cursor = Cursor(stream.initial_cursor, lag_seconds=stream.lag_seconds)
        assert [ev async for ev in stream.read(cursor)] == []
        await env.control("POST", "/_emulator/advance", {"label_id": label_id})
        first = [ev async for ev in stream.read(cursor)]
        assert [e.record["status"] for e in first] == ["shipped"]
        again = [ev async for ev in stream.read(cursor)]
        assert {(e.record_key, e.version) for e in again} <= {
            (e.record_key, e.version) for e in first
        }
        await env.control("POST", "/_emulator/advance", {"label_id": label_id})
        await env.control("POST", "/_emulator/advance", {"label_id": label_id})
        later = [ev async for ev in stream.read(cursor)]
        assert later[-1].record["status"] == "delivered"
        assert [e["status"] for e in later[-1].record["events"]] == [
            "accepted", "in_transit", "delivered"
        ]  # fmt: skip

    run(test)


def test_tracking_advances_over_time_and_sends_signed_track_webhooks() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        def hub(request: httpx.Request) -> httpx.Response:
            received.append((dict(request.headers), request.content))
            return httpx.Response(200)

        env = await make_env(
            stack,
            tracking_interval=10.0,
            time_scale=0.005,
            webhook_url="http://hub.test/hooks/acme/shipengine",
            duplicate_probability=1.0,
        )
        env.state.sender._client = httpx.AsyncClient(transport=httpx.MockTransport(hub))
        await buy(env, 1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if env.state.snapshot()["labels"][0]["status_code"] == "DE":
                break
        await env.state.sender.drain(5)
        assert env.state.snapshot()["labels"][0]["events"] == ["AC", "IT", "DE"]
        wh = env.connector.webhooks
        assert wh is not None
        seen = set()
        for headers, body in received:
            wh.verify(headers, body)
            for ev in wh.parse(headers, body):
                seen.add((ev.record_key, ev.version))
                assert ev.record["order"]["id"] == "5001"  # remembered from create_label
        # Every delivery went twice (duplicate_probability=1) but is 3 distinct events.
        assert len(received) == 6 and len(seen) == 3

    run(test)


def test_webhook_signature_rejects_tampering_staleness_and_unknown_keys() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack, connector_settings={"webhook_tolerance_seconds": 60})
        await buy(env, 1)
        st = env.state
        label = next(iter(st.labels.values()))
        body = st.track_payload(label, BASE)
        headers = st.sign(body)
        wh = env.connector.webhooks
        assert wh is not None
        wh.verify(headers, body)
        cases = {
            "tampered body": (headers, body.replace(b"stamps_com", b"stamps_cop")),
            "no signature": ({k: v for k, v in headers.items() if "signature" not in k}, body),
            "other timestamp": ({**headers, "x-shipengine-timestamp": "2020-01-01T00:00:00Z"},
                                body),
            "stale but signed": (st.sign(body, "2020-01-01T00:00:00.000Z"), body),
            "unknown key": ({**headers, "x-shipengine-rsa-sha256-key-id": "se-other"}, body),
            "garbage signature": ({**headers, "x-shipengine-rsa-sha256-signature": "%%"}, body),
            "signed by another key": (
                create_app().state.emulator.sign(body) | {
                    "x-shipengine-rsa-sha256-key-id": st.key_id}, body),
        }  # fmt: skip
        for name, (h, raw) in cases.items():
            with pytest.raises(SignatureRejected) as info:
                wh.verify(h, raw)
            assert API_KEY not in info.value.reason, name
        # The JWKS the connector trusts is the emulator's.
        r = await env.client.get("/jwks")
        assert r.json()["keys"][0]["kid"] == st.key_id
        assert KEYS.get(env.connector.jwks_url, st.key_id) is not None

    run(test)


def test_webhook_of_another_event_type_is_acknowledged_without_events() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        wh = env.connector.webhooks
        assert wh is not None
        body = json.dumps({"resource_url": "x", "resource_type": "API_BATCH"}).encode()
        assert wh.parse(env.state.sign(body), body) == []

    run(test)


# --- emulator behaviour ----------------------------------------------------------------------


def test_emulator_rejects_a_wrong_api_key_with_the_401_error_shape() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack, connector_settings={"api_key": "TEST_wrong"})
        for headers in ({}, {"API-Key": "TEST_wrong"}):
            r = await env.client.get("/v1/labels", headers=headers)
            assert r.status_code == 401
            err = r.json()["errors"][0]
            assert (err["error_type"], err["error_code"]) == ("security", "unauthorized")
            check_response("GET", f"{BASE}/v1/labels", 401, r.content)
        with pytest.raises(VendorError) as info:
            await env.connector.check()
        assert info.value.classified.category == "auth"
        assert "TEST_wrong" not in info.value.classified.reason

    run(test)


def test_emulator_rate_limit_answers_429_with_retry_after_and_the_connector_waits() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack, rate_limit=2, rate_window=60.0, time_scale=0.01)
        hdr = {"API-Key": API_KEY}
        codes = [(await env.client.get("/v1/carriers", headers=hdr)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = await env.client.get("/v1/carriers", headers=hdr)
        assert r.headers["Retry-After"] == "1"
        assert r.json()["errors"][0]["error_code"] == "rate_limit_exceeded"
        with pytest.raises(VendorError) as info:
            await env.connector.client.get("/v1/carriers")
        assert info.value.outcome.value == "rate_limited"
        assert info.value.classified.retry_after == 1.0
        t0 = time.monotonic()
        await env.connector.check()  # waits out Retry-After, then the window has reset
        assert time.monotonic() - t0 >= 0.9

    run(test)


def test_emulator_lists_labels_page_by_page_with_filters() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        for n in range(1, 6):
            await buy(env, n)
        hdr = {"API-Key": API_KEY}
        r = await env.client.get(
            "/v1/labels", params={"page": 2, "page_size": 2, "sort_dir": "asc"}, headers=hdr
        )
        body = r.json()
        assert (body["total"], body["page"], body["pages"]) == (5, 2, 3)
        assert [lb["external_order_id"] for lb in body["labels"]] == ["5003", "5004"]
        assert (
            "page=3" in body["links"]["next"]["href"] and "page=1" in body["links"]["prev"]["href"]
        )
        check_response("GET", str(r.url), 200, r.content)
        number = body["labels"][0]["tracking_number"]
        r = await env.client.get("/v1/labels", params={"tracking_number": number}, headers=hdr)
        assert [lb["tracking_number"] for lb in r.json()["labels"]] == [number]
        r = await env.client.get("/v1/labels", params={"page": 0}, headers=hdr)
        assert r.status_code == 400

    run(test)


def test_emulator_fault_injection_is_classified_retryable_and_state_counts_labels() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        await env.control("POST", "/_emulator/faults", {"status": 503, "count": 1})
        outcome, _ = await run_action(env.connector.actions["create_label"], ctx(shipment(), "f"))
        assert outcome.outcome.value == "retryable"
        await buy(env, 1)
        state = await env.control("GET", "/_emulator/state")
        assert state["counts"] == {"labels": 1, "voided": 0}
        assert state["labels"][0]["external_shipment_id"].startswith("xd-")
        await env.control("POST", "/_emulator/reset")
        assert (await env.control("GET", "/_emulator/state"))["counts"]["labels"] == 0

    run(test)


def test_emulator_refuses_a_repeated_external_shipment_id() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        env = await make_env(stack)
        await buy(env, 1)
        label = next(iter(env.state.labels.values()))
        body = {
            "shipment": {**label.shipment, "packages": [{"weight": {"value": 1, "unit": "pound"}}]}
        }
        r = await env.client.post("/v1/labels", json=body, headers={"API-Key": API_KEY})
        assert r.status_code == 400
        assert r.json()["errors"][0]["error_code"] == "identifier_conflict"

    run(test)


def test_signature_header_is_base64_rsa_over_timestamp_and_body() -> None:
    st = create_app().state.emulator
    body = b'{"resource_type":"API_TRACK"}'
    headers = st.sign(body, "2026-01-01T00:00:00.000Z")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    st.key.public_key().verify(
        base64.b64decode(headers["x-shipengine-rsa-sha256-signature"]),
        b"2026-01-01T00:00:00.000Z." + body,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
