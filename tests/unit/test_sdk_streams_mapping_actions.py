"""Stream cursors, mappers and lookup tables, and how actions turn into outcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.actions import Action, ActionContext, ActionResult, run_action
from crossdock.sdk.errors import ActionRefused, VendorError
from crossdock.sdk.mapping import LookupTable, Mapper, mapping
from crossdock.sdk.streams import Cursor

# --- Cursor ------------------------------------------------------------------------------


def test_start_steps_back_by_the_lag_window() -> None:
    c = Cursor("2024-05-01T12:00:00Z", lag_seconds=90)
    assert c.start() == "2024-05-01T11:58:30Z"
    assert c.value == "2024-05-01T12:00:00Z"  # starting does not move the cursor


def test_start_normalises_offsets_to_utc() -> None:
    c = Cursor("2024-05-01T14:00:00+02:00", lag_seconds=60)
    assert c.start() == "2024-05-01T11:59:00Z"


def test_start_without_lag_or_for_an_integer_position_is_the_position() -> None:
    assert Cursor("2024-05-01T12:00:00Z").start() == "2024-05-01T12:00:00Z"
    assert Cursor("1500", lag_seconds=60).start() == "1500"
    # An 8-digit sequence number is not a date (fromisoformat would read it as one).
    assert Cursor("20240115", lag_seconds=60).start() == "20240115"


def test_advance_never_goes_back() -> None:
    c = Cursor("2024-05-01T12:00:00Z")
    c.advance("2024-05-01T11:00:00Z", "old")
    assert c.value == "2024-05-01T12:00:00Z"
    assert c.seen_at_value == []
    c.advance("2024-05-01T12:00:01Z", "new")
    assert c.value == "2024-05-01T12:00:01Z"
    c.advance(None, "x")
    assert c.value == "2024-05-01T12:00:01Z"


def test_advance_compares_times_not_strings() -> None:
    c = Cursor("2024-05-01T12:00:00Z")
    c.advance("2024-05-01T13:00:00+02:00", "a")  # 11:00 UTC: earlier, though "greater"
    assert c.value == "2024-05-01T12:00:00Z"
    c.advance("2024-05-01T12:00:00.500Z", "b")
    assert c.value == "2024-05-01T12:00:00.500Z"


def test_integer_positions_compare_as_numbers() -> None:
    c = Cursor("9")
    c.advance("10", "a")
    assert c.value == "10"
    c.advance("9", "b")
    assert c.value == "10"
    c = Cursor("20240115")
    c.advance("20240116", "x")
    c.advance("100000000", "y")  # larger number, smaller string
    assert c.value == "100000000"


def test_ids_at_the_boundary_are_remembered() -> None:
    c = Cursor("2024-05-01T12:00:00Z")
    c.advance("2024-05-01T12:00:05Z", "A")
    c.advance("2024-05-01T12:00:05Z", "B")
    c.advance("2024-05-01T12:00:05Z", "B")
    assert c.seen_at_value == ["A", "B"]
    assert c.seen("2024-05-01T12:00:05Z", "A")
    assert c.seen("2024-05-01T12:00:05+00:00", "B")  # the same instant, written otherwise
    assert not c.seen("2024-05-01T12:00:05Z", "C")
    assert not c.seen("2024-05-01T12:00:04Z", "A")
    assert not c.seen("2024-05-01T12:00:05Z", None)
    c.advance("2024-05-01T12:00:05+00:00", "C")
    assert c.value == "2024-05-01T12:00:05Z"
    assert c.seen_at_value == ["A", "B", "C"]
    c.advance("2024-05-01T12:00:06Z", "D")  # a new position forgets the old boundary
    assert c.seen_at_value == ["D"]
    c.advance("2024-05-01T12:00:07Z")
    assert c.seen_at_value == []


def test_boundary_memory_is_bounded() -> None:
    c = Cursor("5")
    for i in range(300):
        c.advance("5", f"id{i}")
    assert len(c.seen_at_value) == 200
    assert c.seen_at_value[-1] == "id299"


def test_state_round_trips_through_json() -> None:
    c = Cursor("2024-05-01T12:00:05Z", lag_seconds=30)
    c.advance("2024-05-01T12:00:05Z", "A")
    state = json.loads(json.dumps(c.to_state()))
    assert state == {"cursor": "2024-05-01T12:00:05Z", "seen": ["A"]}
    back = Cursor.from_state(state, "1970-01-01T00:00:00Z", 30)
    assert back == c
    assert back.seen("2024-05-01T12:00:05Z", "A")


def test_empty_state_starts_at_the_initial_position() -> None:
    c = Cursor.from_state({}, "1970-01-01T00:00:00Z", 60)
    assert c.value == "1970-01-01T00:00:00Z"
    assert c.seen_at_value == []
    assert c.lag_seconds == 60
    assert Cursor.from_state({"cursor": 42, "seen": "junk"}, "0", 0) == Cursor("42")


# --- Mapper ------------------------------------------------------------------------------


class LineMapper(Mapper):
    direct = (("sku", "sku"), ("title", "name"), ("quantity", "quantity"))

    @mapping
    def price(self, src: dict[str, Any]) -> dict[str, Any]:
        return {"unit_price": {"amount": src["price"], "currency": self.ctx["currency"]}}

    @mapping
    def order_ref(self, src: dict[str, Any]) -> dict[str, Any]:
        return {"order": self.ctx["parent"]["name"]}


class OrderMapper(Mapper):
    direct = (
        ("id", "id"),
        ("name", "number"),
        ("customer.email", "email"),
        ("missing.path", "nothing"),
        ("total", "total"),
    )
    children = (("line_items", "lines", LineMapper),)

    @mapping
    def totals(self, src: dict[str, Any]) -> dict[str, Any]:
        # Wins over the direct pair; a None value is left out.
        return {"total": {"amount": src["total"], "currency": self.ctx["currency"]}, "x": None}

    def not_a_mapping(self, src: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("only @mapping methods run")


SOURCE = {
    "id": 1001,
    "name": "#1001",
    "total": "25.00",
    "customer": {"email": "a@example.com"},
    "line_items": [
        {"sku": "A-1", "title": "Mug", "quantity": 2, "price": "10.00"},
        {"sku": "B-2", "title": "Tea", "quantity": 1, "price": "5.00"},
        "not a line",
    ],
}


def test_mapper_direct_pairs_methods_and_children() -> None:
    out = OrderMapper({"currency": "EUR"}).map(SOURCE)
    assert out == {
        "id": 1001,
        "number": "#1001",
        "email": "a@example.com",
        "total": {"amount": "25.00", "currency": "EUR"},
        "lines": [
            {
                "sku": "A-1",
                "name": "Mug",
                "quantity": 2,
                "unit_price": {"amount": "10.00", "currency": "EUR"},
                "order": "#1001",
            },
            {
                "sku": "B-2",
                "name": "Tea",
                "quantity": 1,
                "unit_price": {"amount": "5.00", "currency": "EUR"},
                "order": "#1001",
            },
        ],
    }


def test_mapper_without_children_source_gives_an_empty_list() -> None:
    out = OrderMapper({"currency": "EUR"}).map({"id": 1, "total": "1"})
    assert out["lines"] == []
    assert "number" not in out


def test_lookup_table_translates_and_refuses_a_missing_key() -> None:
    table = LookupTable("sku_to_item", {"A-1": "ITEM-001", 42: "ITEM-042"}, what="SKU")
    assert table.get("A-1") == "ITEM-001"
    assert table.get(42) == "ITEM-042"
    with pytest.raises(ActionRefused) as err:
        table.get("ZZZ-9")
    refused = err.value
    assert refused.category == "lookup"
    assert "'ZZZ-9'" in refused.reason and "'sku_to_item'" in refused.reason
    assert "SKU" in refused.reason
    assert "'ZZZ-9'" in refused.fix and "'sku_to_item'" in refused.fix
    cl = refused.classified()
    assert (cl.outcome, cl.category) == (Outcome.PERMANENT, "lookup")


def test_lookup_table_default_is_used_for_a_missing_key() -> None:
    table = LookupTable("carrier", {"express": "ups_next_day"}, default="usps_ground")
    assert table.get("express") == "ups_next_day"
    assert table.get("whatever") == "usps_ground"
    assert LookupTable("zero", {}, default=0).get("x") == 0


# --- actions -----------------------------------------------------------------------------


def _ctx() -> ActionContext:
    return ActionContext(record={"id": "1"}, idempotency_key="idem-1", record_key="1")


def _vendor_error(outcome: Outcome, category: str = "x") -> VendorError:
    return VendorError(Classified(outcome, category, f"{outcome} reason", "a fix"), 503)


class Scripted(Action):
    name = "scripted"
    verifiable = True

    def __init__(self, perform: Any, lookup: Any = None, verifiable: bool = True) -> None:
        super().__init__(connector=None)
        self._perform = perform
        self._lookup = lookup
        self.verifiable = verifiable  # type: ignore[misc]
        self.lookups = 0

    async def perform(self, ctx: ActionContext) -> ActionResult:
        if isinstance(self._perform, BaseException):
            raise self._perform
        result: ActionResult = self._perform
        return result

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        self.lookups += 1
        if isinstance(self._lookup, BaseException):
            raise self._lookup
        found: ActionResult | None = self._lookup
        return found


@pytest.mark.anyio
async def test_run_action_success() -> None:
    cl, result = await run_action(Scripted(ActionResult("ext-9", detail="created")), _ctx())
    assert (cl.outcome, cl.category, cl.reason) == (Outcome.SUCCESS, "ok", "created")
    assert result is not None and result.external_id == "ext-9" and not result.verified
    cl, _ = await run_action(Scripted(ActionResult("ext-9")), _ctx())
    assert cl.reason == "delivered"


@pytest.mark.anyio
async def test_run_action_refused_is_permanent_with_category_reason_fix() -> None:
    refused = ActionRefused("unknown_sku", "SKU X is unknown", "Add SKU X")
    cl, result = await run_action(Scripted(refused), _ctx())
    assert result is None
    assert cl == Classified(Outcome.PERMANENT, "unknown_sku", "SKU X is unknown", "Add SKU X")


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", [Outcome.RETRYABLE, Outcome.RATE_LIMITED, Outcome.PERMANENT])
async def test_run_action_vendor_error_passes_through(outcome: Outcome) -> None:
    err = _vendor_error(outcome)
    action = Scripted(err, lookup=ActionResult("never"))
    cl, result = await run_action(action, _ctx())
    assert cl is err.classified and result is None
    assert action.lookups == 0  # only an uncertain outcome is verified


@pytest.mark.anyio
async def test_uncertain_write_found_at_the_destination_is_a_verified_success() -> None:
    action = Scripted(_vendor_error(Outcome.UNCERTAIN, "timeout"), lookup=ActionResult("ext-1"))
    cl, result = await run_action(action, _ctx())
    assert (cl.outcome, cl.category) == (Outcome.SUCCESS, "verified")
    assert result is not None and result.verified and result.external_id == "ext-1"


@pytest.mark.anyio
async def test_uncertain_write_not_found_is_retryable() -> None:
    err = _vendor_error(Outcome.UNCERTAIN, "timeout")
    cl, result = await run_action(Scripted(err, lookup=None), _ctx())
    assert (cl.outcome, cl.category) == (Outcome.RETRYABLE, "timeout")
    assert err.classified.reason in cl.reason and "no record" in cl.reason
    assert result is None


@pytest.mark.anyio
async def test_uncertain_write_whose_lookup_fails_stays_uncertain() -> None:
    err = _vendor_error(Outcome.UNCERTAIN, "timeout")
    for failure in (
        _vendor_error(Outcome.RETRYABLE),
        ActionRefused("lookup", "cannot tell", "look by hand"),
    ):
        action = Scripted(err, lookup=failure)
        cl, result = await run_action(action, _ctx())
        assert cl is err.classified and result is None
        assert action.lookups == 1


@pytest.mark.anyio
async def test_uncertain_write_that_cannot_be_verified_stays_uncertain() -> None:
    err = _vendor_error(Outcome.UNCERTAIN, "timeout")
    action = Scripted(err, lookup=ActionResult("x"), verifiable=False)
    cl, result = await run_action(action, _ctx())
    assert cl.outcome is Outcome.UNCERTAIN and result is None
    assert action.lookups == 0


def test_default_idempotency_key_is_the_hubs() -> None:
    assert Scripted(ActionResult()).idempotency_key(_ctx()) == "idem-1"
