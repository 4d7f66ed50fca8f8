"""Credentials encrypted at rest, with rotatable keys.

A :class:`SecretBox` holds one or more Fernet keys, newest first. The first key encrypts;
every key decrypts, so a new key can be put in front while the old one stays behind it
until every stored token has been :meth:`SecretBox.rotate`-d. Keys come from the
environment (``CROSSDOCK_SECRET_KEYS``, comma-separated, newest first) or from a key file
(one key per line, newest first) that is created with a fresh key and mode 0600 when it
does not exist. See :func:`load_secret_box`.

Errors are :class:`SecretKeyError` with plain messages that never contain key material
or plaintext.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = [
    "ENV_VAR",
    "SecretBox",
    "SecretKeyError",
    "generate_key",
    "load_secret_box",
]

ENV_VAR = "CROSSDOCK_SECRET_KEYS"
"""The environment variable holding the comma-separated Fernet keys, newest first."""

_UNDECRYPTABLE = (
    "the stored credentials cannot be decrypted with the configured keys: "
    f"was {ENV_VAR} changed without keeping the old key?"
)


class SecretKeyError(Exception):
    """The secret keys are missing or invalid, or a token cannot be decrypted with them."""


def generate_key() -> str:
    """A fresh Fernet key (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode("ascii")


def _fernet(key: str, position: int) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        # Never echo the key itself: say which one is wrong and what a key looks like.
        raise SecretKeyError(
            f"secret key number {position} is not a valid Fernet key "
            "(32 random bytes in url-safe base64, as made by "
            "crossdock.security.crypto.generate_key())"
        ) from None


class SecretBox:
    """Encrypts and decrypts JSON objects with rotatable Fernet keys.

    ``keys`` are newest first: the first encrypts, all of them decrypt.
    """

    __slots__ = ("_multi", "_primary", "_size")

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        fernets = [_fernet(k, i) for i, k in enumerate(keys, start=1) if k.strip()]
        if not fernets:
            raise SecretKeyError("no secret keys are configured")
        self._primary = fernets[0]
        self._multi = MultiFernet(fernets)
        self._size = len(fernets)

    def __repr__(self) -> str:
        return f"SecretBox({self._size} key{'s' if self._size != 1 else ''})"

    @property
    def key_count(self) -> int:
        """How many keys the box holds (the primary one included)."""
        return self._size

    def encrypt_json(self, obj: dict[str, Any]) -> str:
        """Encrypt a JSON-serialisable dict under the primary key; returns a text token."""
        data = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return self._primary.encrypt(data.encode("utf-8")).decode("ascii")

    def decrypt_json(self, token: str) -> dict[str, Any]:
        """Decrypt a token made by :meth:`encrypt_json` with any configured key."""
        plain = self._decrypt(token)
        try:
            obj = json.loads(plain)
        except ValueError:
            raise SecretKeyError("the stored credentials are not valid JSON") from None
        if not isinstance(obj, dict):
            raise SecretKeyError("the stored credentials are not a JSON object")
        return obj

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the primary key (decrypting it with any key)."""
        try:
            return self._multi.rotate(_token_bytes(token)).decode("ascii")
        except InvalidToken:
            raise SecretKeyError(_UNDECRYPTABLE) from None

    def needs_rotation(self, token: str) -> bool:
        """True if the token decrypts only with an older key, not with the primary one.

        Raises :class:`SecretKeyError` if no configured key decrypts it.
        """
        raw = _token_bytes(token)
        try:
            self._primary.decrypt(raw)
        except InvalidToken:
            self._decrypt(token)  # raises SecretKeyError if no key decrypts it
            return True
        return False

    def _decrypt(self, token: str) -> bytes:
        try:
            return self._multi.decrypt(_token_bytes(token))
        except InvalidToken:
            raise SecretKeyError(_UNDECRYPTABLE) from None


def _token_bytes(token: str) -> bytes:
    try:
        return token.strip().encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise SecretKeyError(_UNDECRYPTABLE) from None


def _split_keys(text: str, sep: str | None) -> list[str]:
    parts = text.split(sep) if sep else text.splitlines()
    keys = []
    for part in parts:
        key = part.strip()
        if key and not key.startswith("#"):
            keys.append(key)
    return keys


def load_secret_box(env: Mapping[str, str], key_file: Path) -> SecretBox:
    """The process's :class:`SecretBox`.

    Keys come from ``CROSSDOCK_SECRET_KEYS`` in ``env`` (comma-separated, newest first)
    if it is set and not blank; otherwise from ``key_file`` (one key per line, newest
    first; blank lines and ``#`` comments ignored). A missing ``key_file`` is created
    with one fresh key and mode 0600 (its folder too, mode 0700, if needed).
    """
    from_env = _split_keys(env.get(ENV_VAR, ""), ",")
    if from_env:
        return SecretBox(from_env)
    key_file = Path(key_file)
    if not key_file.exists():
        _create_key_file(key_file)
    try:
        text = key_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretKeyError(
            f"cannot read the key file {key_file}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise SecretKeyError(f"the key file {key_file} is not UTF-8 text") from None
    keys = _split_keys(text, None)
    if not keys:
        raise SecretKeyError(
            f"the key file {key_file} holds no keys: put a key in it or set {ENV_VAR}"
        )
    return SecretBox(keys)


def _create_key_file(key_file: Path) -> None:
    """Write a fresh key to ``key_file`` with mode 0600; never overwrite an existing file.

    The key is written to a private temporary file first and then hard-linked into
    place, so a concurrent reader never sees an empty key file and the first of two
    racing processes wins.
    """
    try:
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".crossdock-key-", dir=key_file.parent)
    except OSError as exc:
        raise SecretKeyError(
            f"cannot create the key file {key_file}: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(generate_key() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race
            os.link(tmp, key_file)
    except OSError as exc:
        raise SecretKeyError(
            f"cannot write the key file {key_file}: {exc.strerror or exc}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
