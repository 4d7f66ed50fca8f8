"""Flow files: checked at load with file and line, compiled once, failures in plain words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crossdock.flows import (
    Flow,
    MappingFailure,
    dry_run,
    idempotency_key,
    load_flows,
    parse_flow,
)
from crossdock.flows import expressions as expressions_module
from crossdock.flows.durations import parse_duration
from crossdock.project.config import Project, parse_project_text
from crossdock.project.yamlsrc import ConfigError, ConfigIssue

PROJECT = """\
workspaces:
  acme:
    name: Acme Ltd
    connections:
      shop:
        connector: http
        inbound:
          signature: {scheme: none}
          event_type: "headers['x-event-type']"
          record_key: body.id
      sink:
        connector: http
        outbound:
          base_url: http://127.0.0.1:8090/
          auth: {type: bearer, token: s3cr3t-token}
          headers: {X-Source: crossdock}
          operations:
            create_order:
              method: POST
              path: /records/orders
              when_exists: update_order
            update_order: {method: PUT, path: "/records/orders/{xref}"}
            put_order: {method: PUT, path: "/orders/{order}/lines"}
"""

FLOW = """\
name: orders-to-sink
description: Orders from the shop to the sink
trigger:
  connection: shop
  events: [order.created, order.updated]
filter: "body.total | float > 0"
mapping:
  order_number: body.name
  currency: "'EUR'"
  channel: {$const: shop}
  total: "body.total | decimal"
  email: body.customer.email
  lines:
    $each: body.line_items
    $as: line
    $map:
      sku: "line.sku | lookup('skus')"
      quantity: line.quantity
lookups:
  skus: {ABC-1: WH-ABC-1, ABC-2: WH-ABC-2}
action:
  connection: sink
  operation: create_order
options:
  retry: {max_attempts: 8, initial_delay: 500ms, max_delay: 5m, multiplier: 2.0, jitter: 0.2, max_age: 24h}
  priority: 3
emit: order.sent
"""  # noqa: E501


def project(text: str = PROJECT, root: Path = Path("/tmp/proj")) -> Project:
    return parse_project_text(text, "crossdock.yaml", root, {})


def flow(text: str = FLOW, source: str = "flows/orders.yaml", **kw: Any) -> Flow:
    proj = kw.pop("proj", None) or project()
    return parse_flow(text, source, proj, env=kw.pop("env", {}), **kw)


def issues(
    text: str, source: str = "flows/orders.yaml", proj: Project | None = None
) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        parse_flow(text, source, proj or project(), env={})
    return info.value.issues


def ctx(**body: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1001,
        "name": "#1001",
        "total": "25.50",
        "customer": {"email": "a@example.com"},
        "line_items": [{"sku": "ABC-1", "quantity": 2}, {"sku": "ABC-2", "quantity": 1}],
    }
    base.update(body)
    return {
        "body": base,
        "headers": {"x-event-type": "order.created"},
        "event": {
            "id": 1,
            "workspace": "acme",
            "connection": "shop",
            "type": "order.created",
            "key": "1001",
            "version": "3",
            "received_at": 0.0,
        },
        "xref": None,
    }


# --- loading -------------------------------------------------------------------------


def test_valid_flow_loads_with_typed_options() -> None:
    fl = flow()
    assert fl.name == "orders-to-sink" and fl.workspace == "acme"
    assert fl.trigger.connection == "shop"
    assert fl.trigger.events == ("order.created", "order.updated")
    assert fl.action.connection == "sink" and fl.action.operation == "create_order"
    r = fl.options.retry
    assert (r.max_attempts, r.initial_delay, r.max_delay, r.max_age) == (8, 0.5, 300.0, 86400.0)
    assert fl.options.ordering == "record" and fl.options.skip_stale is True
    assert fl.options.priority == 3 and fl.emit == "order.sent"
    assert fl.source_text == FLOW and fl.file == Path("flows/orders.yaml")


def test_flow_name_defaults_to_the_file_stem() -> None:
    fl = flow(FLOW.replace("name: orders-to-sink\n", ""), source="flows/shop-orders.yaml")
    assert fl.name == "shop-orders"


def test_unknown_action_operation_names_file_line_and_choices() -> None:
    (issue,) = issues(FLOW.replace("operation: create_order", "operation: create_ordr"))
    assert (issue.file, issue.line, issue.column) == ("flows/orders.yaml", 23, 14)
    assert issue.message.startswith("unknown operation 'create_ordr' on connection 'sink'")
    assert issue.expected == "one of: create_order, put_order, update_order"
    assert str(issue).startswith(
        "flows/orders.yaml:23:14: action.operation: unknown operation 'create_ordr' on "
        "connection 'sink'"
    )


def test_unknown_trigger_connection_lists_the_known_ones() -> None:
    (issue,) = issues(FLOW.replace("connection: shop", "connection: shopp"))
    assert issue.line == 4
    assert "unknown connection 'shopp'" in issue.message and "did you mean 'shop'" in issue.message
    assert issue.expected == "one of: shop"


def test_connection_without_outbound_cannot_be_the_action() -> None:
    (issue,) = issues(FLOW.replace("  connection: sink", "  connection: shop"))
    assert (issue.line, issue.column) == (22, 15)
    assert "cannot be written to" in issue.message and issue.expected == "one of: sink"


def test_all_issues_in_a_file_are_reported_together() -> None:
    bad = (
        FLOW.replace("connection: shop", "connection: shopp")
        .replace("operation: create_order", "operation: nope")
        .replace("body.total | float > 0", "body.total | flaot > 0")
        .replace("  order_number: body.name", "  order_number: body.name |")
        .replace("mapping:", "mapings: {}\nmapping:")
        .replace("initial_delay: 500ms", "initial_delay: soon")
        .replace("lookup('skus')", "lookup('skuz')")
    )
    found = issues(bad)
    text = "\n".join(str(i) for i in found)
    assert len(found) == 7, text
    for part in (
        "unknown connection 'shopp'",
        "unknown operation 'nope'",
        "unknown filter 'flaot'",
        "invalid expression",
        "unknown key 'mapings' — did you mean 'mapping'?",
        "'soon' is not a duration",
        "unknown lookup table 'skuz'",
    ):
        assert part in text
    assert [i.line for i in found] == sorted(i.line for i in found)


def test_unknown_filter_lists_the_available_ones_at_its_column() -> None:
    (issue,) = issues(FLOW.replace("body.total | float > 0", "body.total | flaot > 0"))
    assert (issue.line, issue.column) == (6, 23)  # the 'f' of 'flaot'
    assert "did you mean 'float'" in issue.message
    assert issue.expected is not None
    assert all(name in issue.expected for name in ("lookup", "decimal", "money", "iso8601"))


def test_bad_expression_syntax_gives_jinjas_message() -> None:
    (issue,) = issues(FLOW.replace("quantity: line.quantity", "quantity: line.quantity +"))
    assert issue.line == 18 and issue.path == "mapping.lines.$map.quantity"
    assert issue.message.startswith("invalid expression: unexpected")


def test_unknown_variable_is_reported_with_suggestion() -> None:
    (issue,) = issues(FLOW.replace("order_number: body.name", "order_number: bdy.name"))
    assert issue.line == 8 and "unknown variable 'bdy'" in issue.message
    assert "did you mean 'body'" in issue.message


def test_bad_duration_names_the_accepted_forms() -> None:
    (issue,) = issues(FLOW.replace("max_age: 24h", "max_age: 1 day"))
    assert issue.line == 25 and issue.path == "options.retry.max_age"  # the retry line
    assert issue.expected is not None and "24h" in issue.expected


def test_durations_accept_units_and_seconds() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1s") == 1 and parse_duration(30) == 30
    assert parse_duration("5m") == 300 and parse_duration("24h") == 86400
    assert parse_duration("1h30m") == 5400
    for bad in ("soon", "-1", "5 minutes", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_unset_env_var_in_a_flow_is_reported_at_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_flow(
            FLOW.replace("- 'EUR'", "").replace("\"'EUR'\"", "\"'${CURRENCY}'\""),
            "flows/orders.yaml",
            project(),
            env={},
        )
    (issue,) = info.value.issues
    assert issue.line == 9 and issue.message == "environment variable CURRENCY is not set"


def test_missing_lookup_file_is_reported(tmp_path: Path) -> None:
    text = FLOW.replace(
        "skus: {ABC-1: WH-ABC-1, ABC-2: WH-ABC-2}", "skus: {$file: ../lookups/skus.csv}"
    )
    with pytest.raises(ConfigError) as info:
        parse_flow(text, "flows/orders.yaml", project(), env={}, file=tmp_path / "flows" / "o.yaml")
    (issue,) = info.value.issues
    assert issue.line == 20 and "lookup file '../lookups/skus.csv' not found" in issue.message


def test_lookup_table_from_a_csv_file_relative_to_the_flow(tmp_path: Path) -> None:
    (tmp_path / "lookups").mkdir()
    (tmp_path / "lookups" / "skus.csv").write_text("ABC-1,WH-1\nABC-2,WH-2\n")
    text = FLOW.replace(
        "skus: {ABC-1: WH-ABC-1, ABC-2: WH-ABC-2}", "skus: {$file: ../lookups/skus.csv}"
    )
    fl = parse_flow(
        text, "flows/orders.yaml", project(), env={}, file=tmp_path / "flows" / "o.yaml"
    )
    assert [line["sku"] for line in fl.render(ctx()).body["lines"]] == ["WH-1", "WH-2"]


def test_workspace_is_required_when_the_project_has_several() -> None:
    two = PROJECT + "  beta:\n    name: Beta\n"
    (issue,) = issues(FLOW, proj=project(two))
    assert "missing key 'workspace'" in issue.message and issue.expected == "one of: acme, beta"


def test_path_placeholders_need_path_params() -> None:
    text = FLOW.replace("operation: create_order", "operation: put_order")
    (issue,) = issues(text)
    assert "needs '{order}'" in issue.message and issue.line == 21
    fl = flow(
        text.replace(
            "operation: put_order", "operation: put_order\n  path_params: {order: body.id}"
        )
    )
    assert fl.render(ctx()).path_params == {"order": "1001"}


def _write_project(tmp_path: Path, flows: dict[str, str]) -> Project:
    (tmp_path / "flows").mkdir()
    for name, text in flows.items():
        (tmp_path / "flows" / name).write_text(text)
    return project(root=tmp_path)


def test_duplicate_flow_names_are_reported(tmp_path: Path) -> None:
    proj = _write_project(tmp_path, {"a.yaml": FLOW, "b.yaml": FLOW})
    with pytest.raises(ConfigError) as info:
        load_flows(proj.flows_dir, proj, {})
    (issue,) = info.value.issues
    assert issue.file.endswith("b.yaml") and issue.line == 1
    assert "duplicate flow name 'orders-to-sink'" in issue.message


def test_trigger_on_a_connection_without_inbound_needs_a_flow_that_emits_there(
    tmp_path: Path,
) -> None:
    follow = (
        "name: follow-up\ntrigger: {connection: sink, events: [order.sent]}\n"
        "mapping: body\naction: {connection: sink, operation: create_order}\n"
    )
    proj = _write_project(tmp_path, {"a.yaml": FLOW, "b.yaml": follow})
    assert [f.name for f in load_flows(proj.flows_dir, proj, {})] == ["orders-to-sink", "follow-up"]
    (tmp_path / "flows" / "a.yaml").unlink()
    with pytest.raises(ConfigError) as info:
        load_flows(proj.flows_dir, proj, {})
    (issue,) = info.value.issues
    assert issue.line == 2 and "receives no webhooks" in issue.message
    assert issue.expected is not None and issue.expected.startswith("one of: shop")


# --- matching, filter, mapping -----------------------------------------------------


def test_trigger_matches_exact_names_star_and_globs() -> None:
    fl = flow()
    assert fl.matches("shop", "order.created") and not fl.matches("shop", "order.deleted")
    assert not fl.matches("sink", "order.created")
    glob = flow(FLOW.replace("[order.created, order.updated]", "['order.*']"))
    assert glob.matches("shop", "order.deleted") and not glob.matches("shop", "product.updated")
    star = flow(FLOW.replace("[order.created, order.updated]", "'*'"))
    assert star.matches("shop", "anything")


def test_filter_decides_acceptance() -> None:
    fl = flow()
    assert fl.accepts(ctx()) is True
    assert fl.accepts(ctx(total="0")) is False
    no_filter = flow(FLOW.replace('filter: "body.total | float > 0"\n', ""))
    assert no_filter.accepts(ctx(total="0")) is True


def test_render_builds_the_body_from_the_mapping() -> None:
    rendered = flow().render(ctx())
    assert rendered.body == {
        "order_number": "#1001",
        "currency": "EUR",
        "channel": "shop",
        "total": "25.50",  # Decimal -> string
        "email": "a@example.com",
        "lines": [{"sku": "WH-ABC-1", "quantity": 2}, {"sku": "WH-ABC-2", "quantity": 1}],
    }
    assert rendered.path_params == {}
    json.dumps(rendered.body)  # JSON-serialisable


def test_expressions_are_compiled_once_not_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    env = expressions_module.ENV
    calls: list[str] = []
    original = env.compile_expression

    def counting(source: str, undefined_to_none: bool = True) -> Any:
        calls.append(source)
        return original(source, undefined_to_none=undefined_to_none)

    proj = project()
    monkeypatch.setattr(env, "compile_expression", counting)
    fl = flow(proj=proj)
    at_load = len(calls)
    assert at_load == 8  # filter, 4 mapping leaves, $each and 2 inside $map
    for i in range(50):
        fl.accepts(ctx(name=f"#{i}"))
        fl.render(ctx(name=f"#{i}"))
    assert len(calls) == at_load


def test_missing_lookup_value_is_a_lookup_failure_with_fix() -> None:
    event = ctx(line_items=[{"sku": "ABC-9", "quantity": 1}])
    with pytest.raises(MappingFailure) as info:
        flow().render(event)
    f = info.value
    assert f.category == "lookup"
    assert f.reason == "SKU 'ABC-9' is not in lookup table 'skus' of flow orders-to-sink"
    assert (
        f.fix
        == "Add 'ABC-9' to the 'skus' table (flows/orders.yaml line 20) and retry the delivery"
    )
    assert f.field == "lines[0].sku"


def test_lookup_default_avoids_a_failure() -> None:
    fl = flow(FLOW.replace("lookup('skus')", "lookup('skus', 'UNKNOWN')"))
    body = fl.render(ctx(line_items=[{"sku": "ABC-9", "quantity": 1}])).body
    assert body["lines"][0]["sku"] == "UNKNOWN"


def test_missing_field_is_a_mapping_failure_naming_field_and_target() -> None:
    event = ctx()
    del event["body"]["customer"]["email"]
    with pytest.raises(MappingFailure) as info:
        flow().render(event)
    f = info.value
    assert f.category == "mapping" and f.field == "email"
    assert f.reason == "the event has no field 'customer.email' (needed for 'email')"
    assert "flows/orders.yaml line 12" in f.fix


def test_missing_field_inside_each_names_the_source_item() -> None:
    with pytest.raises(MappingFailure) as info:
        flow().render(ctx(line_items=[{"sku": "ABC-1", "quantity": 1}, {"quantity": 1}]))
    assert (
        info.value.reason
        == "the event has no field 'line_items[1].sku' (needed for 'lines[1].sku')"
    )


def test_null_parent_is_explained() -> None:
    with pytest.raises(MappingFailure) as info:
        flow().render(ctx(customer=None))
    assert "'customer' is empty (null), so it has no 'email'" in info.value.reason


def test_type_errors_are_mapping_failures_without_tracebacks() -> None:
    with pytest.raises(MappingFailure) as info:
        flow().render(ctx(total="twelve"))
    f = info.value
    assert f.category == "mapping" and f.field == "total"
    assert "'twelve' is not a number" in f.reason and "Traceback" not in f.reason
    with pytest.raises(MappingFailure) as info:
        flow().accepts(ctx(total=None))
    assert info.value.field == "filter" and "None" not in info.value.reason.split(":")[0]


def test_each_needs_a_list() -> None:
    with pytest.raises(MappingFailure) as info:
        flow().render(ctx(line_items={"a": 1}))
    assert "needs a list" in info.value.reason and "an object" in info.value.reason


def test_sandbox_refuses_unsafe_attributes() -> None:
    fl = flow(FLOW.replace("order_number: body.name", "order_number: body.__class__.__mro__"))
    with pytest.raises(MappingFailure) as info:
        fl.render(ctx())
    assert info.value.category == "mapping"


def test_custom_filters() -> None:
    mapping = {
        "money": "body.total | money",
        "yen": "body.total | money('JPY')",
        "qty": "'3' | int",
        "ratio": "'0.25' | float",
        "when": "'2024-05-01T12:00:00+02:00' | iso8601",
        "naive": "'2024-05-01 12:00' | iso8601",
        "digest": "'abc' | sha256",
        "shout": "'abc' | upper",
        "fallback": "body.missing | default('x')",
        "now": "now().year > 2000",
    }
    text = (
        FLOW.split("mapping:")[0]
        + "mapping:\n"
        + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in mapping.items())
        + "action:"
        + FLOW.split("action:")[1]
    )
    body = flow(text).render(ctx(total="12.345")).body
    assert body == {
        "money": "12.35",
        "yen": "12",
        "qty": 3,
        "ratio": 0.25,
        "when": "2024-05-01T10:00:00Z",
        "naive": "2024-05-01T12:00:00Z",
        "digest": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "shout": "ABC",
        "fallback": "x",
        "now": True,
    }


def test_int_filter_refuses_to_truncate() -> None:
    fl = flow(FLOW.replace("quantity: line.quantity", "quantity: line.quantity | int"))
    with pytest.raises(MappingFailure) as info:
        fl.render(ctx(line_items=[{"sku": "ABC-1", "quantity": "2.5"}]))
    assert "'2.5' is not a whole number" in info.value.reason


# --- dry run and keys --------------------------------------------------------------


def test_dry_run_shows_the_request_with_redacted_auth() -> None:
    result = dry_run(flow(), ctx())
    key = idempotency_key("sink", "1001", "create_order", "3")
    assert result.would_send and result.failure is None and result.skipped_rule is None
    assert (result.method, result.url) == ("POST", "http://127.0.0.1:8090/records/orders")
    assert result.headers["Authorization"] == "[REDACTED]"
    assert result.headers["Idempotency-Key"] == key == result.idempotency_key
    assert result.headers["X-Source"] == "crossdock"
    assert "s3cr3t-token" not in json.dumps(result.headers)
    assert result.body["order_number"] == "#1001"


def test_dry_run_uses_when_exists_once_there_is_a_cross_reference() -> None:
    event = ctx()
    event["xref"] = "orders-7"
    result = dry_run(flow(), event)
    assert (result.method, result.url) == ("PUT", "http://127.0.0.1:8090/records/orders/orders-7")
    assert result.idempotency_key == idempotency_key("sink", "1001", "update_order", "3")


def test_dry_run_reports_skip_and_failure() -> None:
    skipped = dry_run(flow(), ctx(total="0"))
    assert not skipped.would_send and skipped.skipped_rule == "filter"
    failed = dry_run(flow(), ctx(line_items=[{"sku": "NOPE", "quantity": 1}]))
    assert not failed.would_send and failed.failure is not None
    assert failed.failure.category == "lookup"


def test_idempotency_key_is_stable_and_distinct() -> None:
    k = idempotency_key("sink", "1001", "create_order", "3")
    assert k == idempotency_key("sink", "1001", "create_order", "3") and len(k) == 64
    assert k != idempotency_key("sink", "1001", "create_order", "4")
    assert k != idempotency_key("sink", "1001", "update_order", "3")
    assert idempotency_key("sink", "1", "op", None) == idempotency_key("sink", "1", "op", "")
