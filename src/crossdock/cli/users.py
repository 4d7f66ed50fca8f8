"""``crossdock users``: console users and their roles per workspace."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crossdock.cli.main import ProjectOpt, _open, console, fail

users_app = typer.Typer(
    help="Console users and their role in each workspace.", no_args_is_help=True
)

ROLES = ("viewer", "operator", "admin")


def _password(password_stdin: bool, env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            raise fail(f"the environment variable {env} is not set")
        return value
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    again = typer.prompt("Password again", hide_input=True)
    if first != again:
        raise fail("the two passwords differ")
    return str(first)


def _run(project: Path, fn: Any) -> Any:
    from crossdock.console.users import UserError

    db, _box, _proj = _open(project, apply=True)
    try:
        return db.write_sync(fn)
    except UserError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()


@users_app.command("create")
def users_create(
    username: str,
    workspace: Annotated[
        list[str], typer.Option("--workspace", "-w", help="A workspace to give (repeat for more).")
    ],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    name: Annotated[str | None, typer.Option(help="The name shown in the console.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Read the password from this variable.")
    ] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Create a console user with ROLE in each --workspace."""
    from crossdock.console.users import create_user, grant

    if role not in ROLES:
        raise fail(f"unknown role '{role}': expected viewer, operator or admin")
    password = _password(password_stdin, password_env)

    def write(conn: Any) -> None:
        create_user(conn, username, password, name)
        for ws in workspace:
            grant(conn, username, ws, role)

    _run(project, write)
    console.print(f"User [bold]{username.lower()}[/] created: {role} in {', '.join(workspace)}.")


@users_app.command("grant")
def users_grant(
    username: str,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="The workspace.")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")],
    project: ProjectOpt = Path("."),
) -> None:
    """Give a user ROLE in a workspace (replaces the role they had there)."""
    from crossdock.console.users import grant

    if role not in ROLES:
        raise fail(f"unknown role '{role}': expected viewer, operator or admin")
    _run(project, lambda conn: grant(conn, username, workspace, role))
    console.print(f"{username.lower()} is now {role} in {workspace}.")


@users_app.command("revoke")
def users_revoke(
    username: str,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="The workspace.")],
    project: ProjectOpt = Path("."),
) -> None:
    """Take a workspace away from a user."""
    from crossdock.console.users import revoke

    _run(project, lambda conn: revoke(conn, username, workspace))
    console.print(f"{username.lower()} no longer sees {workspace}.")


@users_app.command("password")
def users_password(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Read the password from this variable.")
    ] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Set a user's password (signs them out everywhere)."""
    from crossdock.console.users import set_password

    password = _password(password_stdin, password_env)
    _run(project, lambda conn: set_password(conn, username, password))
    console.print(f"Password of {username.lower()} changed; their sessions ended.")


@users_app.command("list")
def users_list(project: ProjectOpt = Path(".")) -> None:
    """Every user and their role in each workspace."""
    from rich.table import Table

    from crossdock.console.users import list_users

    rows = _run(project, list_users)
    t = Table("user", "name", "workspaces", "disabled")
    for u in rows:
        roles = ", ".join(f"{w} ({r})" for w, r in sorted(u["workspaces"].items()))
        t.add_row(u["username"], u["display_name"], roles or "-", "yes" if u["disabled"] else "")
    console.print(t)
