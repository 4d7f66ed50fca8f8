"""Console users: argon2id password hashes, a role per workspace, sessions with CSRF tokens.

A user may belong to several workspaces (a 3PL's staff see each merchant they serve),
with one role in each: viewer < operator < admin (the roles of API keys). A session is a
random token in an HttpOnly cookie; only its SHA-256 is stored, with the session's CSRF
token and its expiry. Every state-changing request must carry that CSRF token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, select, update

from crossdock.security.apikeys import Role
from crossdock.store.tables import console_sessions, memberships, users, workspaces

__all__ = [
    "SESSION_SECONDS",
    "Membership",
    "SessionUser",
    "UserError",
    "check_password",
    "create_session",
    "create_user",
    "end_session",
    "grant",
    "load_session",
    "revoke",
    "set_password",
]

SESSION_SECONDS = 12 * 3600
"""How long a sign-in lasts (a working day); signing in again starts a new one."""

MIN_PASSWORD = 10

# argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane): a hash costs
# tens of milliseconds and 19 MiB while it runs, not the library default's 64 MiB, which
# matters on the small machine a hub often runs on.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that the time taken
    does not tell which usernames exist (made on first use, not at import)."""
    return _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user operation that cannot be done, in plain words."""


@dataclass(frozen=True)
class Membership:
    """A workspace a user may see, its display name and the user's role there."""

    workspace: str
    name: str
    role: Role


@dataclass(frozen=True)
class SessionUser:
    """The signed-in user of a request, their workspaces and the session's CSRF token."""

    user_id: int
    username: str
    display_name: str
    csrf: str
    memberships: tuple[Membership, ...]

    def role_in(self, workspace: str) -> Role | None:
        """The user's role in ``workspace``, or None when they may not see it."""
        for m in self.memberships:
            if m.workspace == workspace:
                return m.role
        return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (refuses passwords shorter than 10 characters)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"A password needs at least {MIN_PASSWORD} characters.")
    return _hasher.hash(password)


def create_user(
    conn: Connection, username: str, password: str, display_name: str | None = None
) -> int:
    """Create a user; returns the id. Usernames are unique, case-insensitive."""
    username = username.strip().lower()
    if not username or len(username) > 200:
        raise UserError("A username is 1 to 200 characters.")
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise UserError(f"There is already a user '{username}'.")
    res = conn.execute(
        users.insert().values(
            username=username,
            display_name=display_name or username,
            password_hash=hash_password(password),
            created_at=time.time(),
        )
    )
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def _user_id(conn: Connection, username: str) -> int:
    row = conn.execute(select(users.c.id).where(users.c.username == username.lower())).first()
    if row is None:
        raise UserError(f"There is no user '{username}'.")
    return int(row[0])


def set_password(conn: Connection, username: str, password: str) -> None:
    """Change a user's password and end all their sessions."""
    uid = _user_id(conn, username)
    conn.execute(
        update(users).where(users.c.id == uid).values(password_hash=hash_password(password))
    )
    conn.execute(delete(console_sessions).where(console_sessions.c.user_id == uid))


def grant(conn: Connection, username: str, workspace: str, role: str) -> None:
    """Give a user ``role`` in ``workspace`` (replacing the role they had there)."""
    r = Role(role)
    uid = _user_id(conn, username)
    if conn.execute(select(workspaces.c.id).where(workspaces.c.id == workspace)).first() is None:
        raise UserError(f"There is no workspace '{workspace}' (apply the project first).")
    conn.execute(
        delete(memberships).where(
            memberships.c.user_id == uid, memberships.c.workspace == workspace
        )
    )
    conn.execute(memberships.insert().values(user_id=uid, workspace=workspace, role=r.value))


def revoke(conn: Connection, username: str, workspace: str) -> None:
    """Take ``workspace`` away from a user."""
    uid = _user_id(conn, username)
    conn.execute(
        delete(memberships).where(
            memberships.c.user_id == uid, memberships.c.workspace == workspace
        )
    )


def check_password(conn: Connection, username: str, password: str) -> int | None:
    """The user's id if ``password`` is theirs and the user is enabled; else None.

    Takes the same time whether or not the user exists. Rehashes on sign-in when the
    hashing parameters changed."""
    row = conn.execute(
        select(users.c.id, users.c.password_hash, users.c.disabled_at).where(
            users.c.username == username.strip().lower()
        )
    ).first()
    stored = row.password_hash if row is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute(
            update(users).where(users.c.id == row.id).values(password_hash=_hasher.hash(password))
        )
    return int(row.id)


def create_session(conn: Connection, user_id: int, now: float | None = None) -> str:
    """Start a session; returns the token for the cookie (stored only as its hash)."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    conn.execute(
        console_sessions.insert().values(
            token_hash=_digest(token),
            user_id=user_id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_SECONDS,
        )
    )
    conn.execute(delete(console_sessions).where(console_sessions.c.expires_at < now))
    return token


def load_session(conn: Connection, token: str, now: float | None = None) -> SessionUser | None:
    """The user of a session token, or None (unknown, expired, user disabled)."""
    if not token or len(token) > 100:
        return None
    now = time.time() if now is None else now
    row = conn.execute(
        select(
            console_sessions.c.token_hash,
            console_sessions.c.csrf,
            console_sessions.c.expires_at,
            users.c.id,
            users.c.username,
            users.c.display_name,
            users.c.disabled_at,
        )
        .select_from(console_sessions.join(users, users.c.id == console_sessions.c.user_id))
        .where(console_sessions.c.token_hash == _digest(token))
    ).first()
    if row is None or row.expires_at < now or row.disabled_at is not None:
        return None
    if not hmac.compare_digest(row.token_hash, _digest(token)):
        return None
    ms = tuple(
        Membership(workspace=r.workspace, name=r.name, role=Role(r.role))
        for r in conn.execute(
            select(memberships.c.workspace, workspaces.c.name, memberships.c.role)
            .select_from(memberships.join(workspaces, workspaces.c.id == memberships.c.workspace))
            .where(memberships.c.user_id == row.id)
            .order_by(workspaces.c.name)
        )
    )
    return SessionUser(
        user_id=int(row.id),
        username=row.username,
        display_name=row.display_name,
        csrf=row.csrf,
        memberships=ms,
    )


def end_session(conn: Connection, token: str) -> None:
    """Sign out: forget the session."""
    conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == _digest(token)))


def list_users(conn: Connection) -> list[dict[str, object]]:
    """Every user with their workspaces and roles (for ``crossdock users list``)."""
    out: list[dict[str, object]] = []
    for u in conn.execute(select(users).order_by(users.c.username)):
        roles = {
            r.workspace: r.role
            for r in conn.execute(select(memberships).where(memberships.c.user_id == u.id))
        }
        out.append(
            {
                "username": u.username,
                "display_name": u.display_name,
                "disabled": u.disabled_at is not None,
                "workspaces": roles,
            }
        )
    return out
