"""API keys: shown once, stored hashed, scoped to one workspace and one role.

A key looks like ``cdk_<prefix>_<secret>``: ``cdk_``, an 8-character lower-case
alphanumeric prefix (stored in clear, unique, used to find the key's row), ``_``, and 43
characters of url-safe base64 (32 random bytes). Only the SHA-256 of the whole key is
stored; the secret part carries 256 bits of entropy, so a fast hash is enough, and
:func:`verify_api_key` compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import StrEnum

__all__ = [
    "KEY_PREFIX",
    "Role",
    "hash_api_key",
    "new_api_key",
    "parse_prefix",
    "verify_api_key",
]

KEY_PREFIX = "cdk_"
"""Every Crossdock API key starts with this (it makes leaked keys easy to scan for)."""

_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_PREFIX_LEN = 8
_SECRET_BYTES = 32  # token_urlsafe(32) is 43 characters
_KEY_RE = re.compile(r"cdk_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")


class Role(StrEnum):
    """What an API key may do, least to most: viewer < operator < admin.

    - ``viewer``: read events, deliveries, exceptions, flows and metrics.
    - ``operator``: also replay, retry and resolve exceptions, pause connections.
    - ``admin``: also change connections, flows, credentials and API keys.
    """

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        """True if a key with this role may do what ``required`` is needed for."""
        return self.rank >= Role(required).rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def hash_api_key(key: str) -> str:
    """The SHA-256 of the whole key, as 64 lower-case hex characters (what is stored).

    Surrounding whitespace (e.g. from a pasted header) is ignored.
    """
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: ``(full key shown once, prefix, sha256 hex hash)``.

    Store the prefix and the hash; show the full key to its owner once and forget it.
    """
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LEN))
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return key, prefix, hash_api_key(key)


def parse_prefix(key: str) -> str | None:
    """The 8-character prefix of a well-formed key, or ``None`` if it is not one."""
    match = _KEY_RE.fullmatch(key.strip()) if isinstance(key, str) else None
    return match.group(1) if match else None


def verify_api_key(key: str, stored_hash: str) -> bool:
    """True if ``key`` hashes to ``stored_hash``; the comparison is constant-time."""
    expected = hash_api_key(key).encode("ascii")
    return hmac.compare_digest(expected, stored_hash.strip().lower().encode("utf-8"))
