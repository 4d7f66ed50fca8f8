"""The ``crossdock`` command as a new user meets it: init, validate, status, schema,
exceptions — and bad input answered with file, line and the fix, never a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossdock.cli.main import app
from crossdock.store.database import Database
from crossdock.store.events import FlowRoute, NewEvent, record_events
from crossdock.store.tables import deliveries, exceptions

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROSSDOCK_DATABASE_URL", database_url)
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    return tmp_path / "p"


def test_init_writes_a_project_that_validates(project: Path) -> None:
    result = runner.invoke(app, ["flows", "validate", "-p", str(project)])
    assert result.exit_code == 0, result.output
    assert "2 flow(s) are valid" in result.output


def test_a_bad_flow_file_is_reported_with_file_line_and_choices(project: Path) -> None:
    flow = project / "flows" / "orders-to-sink.yaml"
    flow.write_text(flow.read_text().replace("operation: create_order", "operation: create_ordr"))
    result = runner.invoke(app, ["flows", "validate", "-p", str(project)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "orders-to-sink.yaml:" in out and "create_ordr" in out and "create_order" in out
    assert "Traceback" not in result.output


def test_status_prints_the_counts_equation_as_json(project: Path, database_url: str) -> None:
    runner.invoke(app, ["apply", "-p", str(project)])
    db = Database(database_url)
    db.start()
    ev = NewEvent(
        "acme",
        "shop",
        "order.created",
        "1001",
        "1",
        "id:e1",
        "c1",
        "{}",
        "{}",
        [FlowRoute("orders-to-sink")],
    )
    db.write_sync(lambda c: record_events(c, [ev]))
    db.close()
    result = runner.invoke(app, ["status", "--json", "-p", str(project)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["received"] == 1 and data["in_progress"] == 1 and data["balanced"] is True


def test_exception_can_be_resolved_from_the_cli_keeping_the_equation(
    project: Path, database_url: str
) -> None:
    runner.invoke(app, ["apply", "-p", str(project)])
    db = Database(database_url)
    db.start()
    ev = NewEvent(
        "acme",
        "shop",
        "order.created",
        "1001",
        "1",
        "id:e1",
        "c1",
        "{}",
        "{}",
        [FlowRoute("orders-to-sink")],
    )
    db.write_sync(lambda c: record_events(c, [ev]))
    now = time.time()

    def fail(c: object) -> None:
        c.execute(deliveries.update().values(state="exception"))  # type: ignore[attr-defined]
        c.execute(  # type: ignore[attr-defined]
            exceptions.insert().values(
                workspace="acme",
                delivery_id=1,
                flow="orders-to-sink",
                record_key="1001",
                category="rejected",
                reason="'sink' rejected the data (HTTP 422).",
                fix="Correct the data.",
                state="open",
                created_at=now,
                updated_at=now,
            )
        )

    db.write_sync(fail)
    db.close()
    listed = runner.invoke(app, ["exceptions", "list", "--json", "-p", str(project)])
    assert json.loads(listed.output)[0]["category"] == "rejected"
    done = runner.invoke(
        app, ["exceptions", "resolve", "1", "--note", "fixed by hand", "-p", str(project)]
    )
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["exceptions", "retry", "1", "-p", str(project)])
    assert again.exit_code == 1 and "not waiting" in again.output
    st = json.loads(runner.invoke(app, ["status", "--json", "-p", str(project)]).output)
    assert st["skipped"] == 1 and st["exceptions"] == 0 and st["balanced"]


def test_schema_prints_the_canonical_order_schema() -> None:
    result = runner.invoke(app, ["schema", "order"])
    assert result.exit_code == 0
    assert json.loads(result.output)["$id"].endswith("/order.json")


def test_unknown_record_type_is_a_plain_error() -> None:
    result = runner.invoke(app, ["schema", "parcel"])
    assert result.exit_code == 1 and "Traceback" not in result.output
