"""crossdock.yaml: bad input is reported as file + line + what is wrong + what would be right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from crossdock.project.config import (
    REDACTED,
    connection_config_from_dict,
    load_project,
    merge_secrets,
    parse_project_text,
    split_secrets,
)
from crossdock.project.yamlsrc import ConfigError, ConfigIssue, load_yaml, substitute_env

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "crossdock" / "examples" / "basic"

PROJECT = """\
version: 1
database_url: sqlite:///.crossdock/crossdock.db
workspaces:
  acme:
    name: Acme Ltd
    connections:
      shop:
        connector: http
        inbound:
          signature: {scheme: hmac-sha256, header: X-Signature, encoding: hex, secret: "${SHOP_SECRET}"}
          event_type: "headers['x-event-type']"
          record_key: "body.id"
          version: "body.version"
      sink:
        connector: http
        outbound:
          base_url: http://127.0.0.1:8090
          auth: {type: bearer, token: "${SINK_TOKEN}"}
          headers: {X-Source: crossdock}
          operations:
            create_order:
              method: post
              path: /records/orders
              external_id: body.id
              lookup: {method: GET, path: "/records/orders/by-key/{idempotency_key}"}
              when_exists: update_order
            update_order: {method: PUT, path: "/records/orders/{xref}"}
        rate_limit: {per_second: 50}
"""  # noqa: E501

ENV = {"SHOP_SECRET": "shop-secret-value", "SINK_TOKEN": "sink-token-value"}


def parse(text: str, env: dict[str, str] | None = None, root: Path = Path("/tmp/proj")):
    return parse_project_text(text, "crossdock.yaml", root, ENV if env is None else env)


def issues_of(text: str, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return info.value.issues


def test_valid_project_parses_into_frozen_models() -> None:
    project = parse(PROJECT)
    ws = project.workspaces["acme"]
    assert ws.id == "acme" and ws.name == "Acme Ltd"
    shop, sink = ws.connections["shop"], ws.connections["sink"]
    assert shop.name == "shop" and shop.inbound is not None and shop.outbound is None
    assert sink.outbound is not None
    op = sink.outbound.operations["create_order"]
    assert op.method == "POST"  # normalised
    assert op.idempotency_header == "Idempotency-Key"
    assert op.when_exists == "update_order"
    assert sink.rate_limit is not None and sink.rate_limit.burst == 50
    assert sink.concurrency == 16
    assert project.flows_dir == Path("/tmp/proj/flows")
    with pytest.raises(ValidationError):
        sink.concurrency = 3  # type: ignore[misc]


def test_relative_sqlite_path_is_relative_to_the_project_folder() -> None:
    project = parse(PROJECT, root=Path("/srv/hub"))
    assert project.database_url == "sqlite:////srv/hub/.crossdock/crossdock.db"
    text = PROJECT.replace("sqlite:///.crossdock/crossdock.db", "postgresql://db/hub")
    assert parse(text).database_url == "postgresql://db/hub"


def test_env_substitution_with_defaults() -> None:
    text, problems = substitute_env("a ${X} b ${Y:-dflt} c $${Z}", {"X": "1"})
    assert text == "a 1 b dflt c ${Z}" and problems == []


def test_unset_env_var_is_reported_at_its_line() -> None:
    issues = issues_of(PROJECT, {"SHOP_SECRET": "s"})
    (issue,) = issues
    assert (issue.line, issue.column) == (18, 39)  # the token value holding ${SINK_TOKEN}
    assert issue.message == "environment variable SINK_TOKEN is not set"
    assert str(issue).startswith("crossdock.yaml:18:39: ")


def test_unknown_key_suggests_the_right_one() -> None:
    text = PROJECT.replace(
        "        connector: http\n        outbound:", "        conector: http\n        outbound:"
    )
    issues = issues_of(text)
    unknown = [i for i in issues if "unknown key" in i.message]
    assert unknown and unknown[0].message == "unknown key 'conector' — did you mean 'connector'?"
    assert unknown[0].line == 15 and unknown[0].column == 9
    assert unknown[0].expected is not None and "connector" in unknown[0].expected
    missing = [i for i in issues if i.message == "missing required key 'connector'"]
    assert missing and missing[0].line == 14  # at the connection's key


def test_wrong_choice_lists_what_is_allowed() -> None:
    text = PROJECT.replace("type: bearer", "type: bearr")
    (issue,) = issues_of(text)
    assert issue.line == 18
    assert "unknown type 'bearr'" in issue.message and "did you mean 'bearer'" in issue.message
    assert issue.expected is not None and "basic" in issue.expected and "none" in issue.expected


def test_bad_inbound_expression_is_an_issue_at_its_line_and_column() -> None:
    text = PROJECT.replace('record_key: "body.id"', 'record_key: "body.id |"')
    (issue,) = issues_of(text)
    assert (issue.line, issue.column) == (12, 33)  # just after the dangling '|'
    assert issue.path == "workspaces.acme.connections.shop.inbound.record_key"
    assert "invalid expression" in issue.message


def test_yaml_syntax_error_has_line_and_column() -> None:
    (issue,) = issues_of("workspaces:\n  acme: {name: [x\n")
    assert issue.line >= 2 and issue.column >= 1
    assert issue.message.startswith("YAML syntax error")


def test_duplicate_yaml_keys_are_reported() -> None:
    text = PROJECT.replace("    name: Acme Ltd\n", "    name: Acme Ltd\n    name: Other\n")
    issues = issues_of(text)
    assert any(i.message.startswith("duplicate key 'name'") and i.line == 6 for i in issues)


def test_connection_without_inbound_poll_or_outbound_and_bad_when_exists_are_reported() -> None:
    text = PROJECT.replace("when_exists: update_order", "when_exists: update_ordr") + (
        "      idle:\n        connector: http\n"
    )
    issues = issues_of(text)
    messages = [i.message for i in issues]
    assert any("unknown operation 'update_ordr'" in m for m in messages)
    assert any("none of 'inbound', 'poll' or 'outbound'" in m for m in messages)


def test_invalid_workspace_id_is_reported_at_its_key() -> None:
    text = PROJECT.replace("  acme:\n", "  Acme_Ltd:\n")
    (issue,) = issues_of(text)
    assert (issue.line, issue.column) == (4, 3)
    assert "not a valid name" in issue.message


def test_config_issue_str_names_file_line_problem_and_fix() -> None:
    issue = ConfigIssue(
        "flows/orders.yaml",
        12,
        5,
        "unknown operation 'create_ordr' on connection 'sink'",
        "one of: create_order, update_order",
        "action.operation",
    )
    assert str(issue) == (
        "flows/orders.yaml:12:5: action.operation: unknown operation 'create_ordr' on "
        "connection 'sink' — expected one of: create_order, update_order"
    )
    err = ConfigError([issue, ConfigIssue("a.yaml", 1, 1, "x")])
    assert str(err).count("\n") == 1 and "flows/orders.yaml:12:5" in str(err)


def test_load_yaml_keeps_keys_as_written() -> None:
    data, smap, issues = load_yaml("NO: Norway\n1: one\nwhen: 2024-01-01\n", "x.yaml")
    assert data == {"NO": "Norway", "1": "one", "when": "2024-01-01"}
    assert smap.key_position(("1",)) == (2, 1) and issues == []


def test_secrets_are_redacted_and_listed() -> None:
    sink = parse(PROJECT).workspaces["acme"].connections["sink"]
    shop = parse(PROJECT).workspaces["acme"].connections["shop"]
    assert sink.secret_values() == ["sink-token-value"]
    assert shop.secret_values() == ["shop-secret-value"]
    public = sink.public_dict()
    assert public["outbound"]["auth"]["token"] == REDACTED
    assert "sink-token-value" not in json.dumps(public) + repr(sink)


def test_split_and_merge_secrets_round_trip() -> None:
    sink = parse(PROJECT).workspaces["acme"].connections["sink"]
    data = sink.model_dump(mode="python", exclude={"name"})
    settings, secrets = split_secrets(data)
    assert secrets == {"/outbound/auth/token": "sink-token-value"}
    assert "sink-token-value" not in json.dumps(settings)
    restored = connection_config_from_dict(
        merge_secrets(json.loads(json.dumps(settings)), secrets), "sink"
    )
    assert restored == sink
    assert isinstance(restored.outbound.auth.token, SecretStr)  # type: ignore[union-attr]


def test_connection_config_from_dict_reports_json_pointers() -> None:
    with pytest.raises(ConfigError) as info:
        connection_config_from_dict(
            {
                "connector": "http",
                "outbound": {
                    "base_url": "http://x",
                    "operations": {
                        "create": {"method": "POST", "path": "/r", "when_exists": "nope"}
                    },
                },
            },
            "Bad Name",
        )
    (issue,) = info.value.issues
    assert issue.path == "/name" and issue.line == 0
    with pytest.raises(ConfigError) as info:
        connection_config_from_dict(
            {
                "connector": "http",
                "outbound": {
                    "base_url": "http://x",
                    "operations": {
                        "create": {"method": "POST", "path": "/r", "when_exists": "nope"}
                    },
                },
            },
            "sink",
        )
    (issue,) = info.value.issues
    assert issue.path == "/outbound/operations/create/when_exists"
    assert str(issue).startswith("connection 'sink': /outbound/operations/create/when_exists:")


def test_example_project_loads(tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLE, dest)
    project = load_project(dest, {})
    assert set(project.workspaces) == {"acme"}
    assert {f.name for f in project.flows} == {"orders-to-sink", "orders-to-warehouse"}
    assert project.database_url == f"sqlite:///{dest.resolve()}/.crossdock/crossdock.db"
    assert load_project(dest / "crossdock.yaml", {}).file == (dest / "crossdock.yaml").resolve()


def test_missing_project_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_project(tmp_path, {})
