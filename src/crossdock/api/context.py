"""What the API needs from the process that mounts it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from crossdock.runtime.registry import Registry
from crossdock.store.database import Database


class SecretBoxLike(Protocol):
    """Credential encryption (``crossdock.security.crypto.SecretBox``)."""

    def encrypt_json(self, data: dict[str, Any]) -> str:
        """Encrypt a JSON object."""
        ...

    def decrypt_json(self, token: str) -> dict[str, Any]:
        """Decrypt what :meth:`encrypt_json` made."""
        ...

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the newest key."""
        ...


def _nothing() -> None:
    return None


@dataclass
class ApiContext:
    """The database, the live registry, the secret box and the hooks to call on change.

    ``on_change`` is called after connections or flows changed (the runtime reloads);
    ``wake`` after deliveries were made due (the worker looks now). ``root`` is the
    project folder flows are validated against (default: the working directory).
    """

    db: Database
    registry: Callable[[], Registry]
    secret_box: SecretBoxLike
    on_change: Callable[[], None] = _nothing
    wake: Callable[[], None] = _nothing
    root: Path | None = None
    limiter: Callable[[], Any] = _nothing
    """The worker's rate limiter in this process (None when no worker runs here)."""
