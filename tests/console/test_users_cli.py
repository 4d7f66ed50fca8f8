"""``crossdock users``: create, grant, revoke, change passwords; clear errors, no echo of
the password."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from crossdock.cli.main import app
from crossdock.console.users import check_password
from crossdock.store.database import Database
from crossdock.store.tables import memberships, users

runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROSSDOCK_DATABASE_URL", database_url)
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    return tmp_path / "p"


def _roles(database_url: str) -> dict[str, dict[str, str]]:
    db = Database(database_url)
    try:
        rows = db.read_sync(
            lambda c: c.execute(
                select(users.c.username, memberships.c.workspace, memberships.c.role).select_from(
                    users.outerjoin(memberships, memberships.c.user_id == users.c.id)
                )
            ).all()
        )
    finally:
        db.close()
    out: dict[str, dict[str, str]] = {}
    for name, ws, role in rows:
        out.setdefault(name, {})
        if ws:
            out[name][ws] = role
    return out


def test_users_are_created_granted_revoked_and_listed(project: Path, database_url: str) -> None:
    p = ["-p", str(project)]
    r = runner.invoke(
        app,
        ["users", "create", "Ada", "-w", "acme", "--role", "operator", "--password-stdin", *p],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    assert PASSWORD not in r.output
    assert _roles(database_url) == {"ada": {"acme": "operator"}}
    assert (
        runner.invoke(app, ["users", "grant", "ada", "-w", "acme", "--role", "admin", *p]).exit_code
        == 0
    )
    assert _roles(database_url) == {"ada": {"acme": "admin"}}
    listed = runner.invoke(app, ["users", "list", *p])
    assert "ada" in listed.output and "acme (admin)" in listed.output
    assert runner.invoke(app, ["users", "revoke", "ada", "-w", "acme", *p]).exit_code == 0
    assert _roles(database_url) == {"ada": {}}


def test_a_new_password_replaces_the_old_one(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = ["-p", str(project)]
    monkeypatch.setenv("ADA_PW", PASSWORD)
    runner.invoke(app, ["users", "create", "ada", "-w", "acme", "--password-env", "ADA_PW", *p])
    monkeypatch.setenv("ADA_PW", "another long password")
    r = runner.invoke(app, ["users", "password", "ada", "--password-env", "ADA_PW", *p])
    assert r.exit_code == 0, r.output
    db = Database(database_url)
    try:
        assert db.write_sync(lambda c: check_password(c, "ada", PASSWORD)) is None
        assert db.write_sync(lambda c: check_password(c, "ada", "another long password"))
    finally:
        db.close()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["users", "create", "bo", "-w", "acme", "--password-stdin"], "short\n", "at least 10"),
        (
            ["users", "create", "bo", "-w", "nowhere", "--password-stdin"],
            PASSWORD + "\n",
            "no workspace 'nowhere'",
        ),
        (["users", "create", "bo", "-w", "acme", "--role", "boss", "--password-stdin"], "", "boss"),
        (["users", "grant", "nobody", "-w", "acme", "--role", "viewer"], "", "no user 'nobody'"),
    ],
)
def test_bad_user_commands_say_what_is_wrong_without_a_traceback(
    project: Path, args: list[str], stdin: str, message: str
) -> None:
    r = runner.invoke(app, [*args, "-p", str(project)], input=stdin)
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    assert message in out and "Traceback" not in out
