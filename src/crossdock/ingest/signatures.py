"""Webhook signature verification.

Every inbound connection names one signature scheme. :func:`verify` checks a delivery
against it in constant time (:func:`hmac.compare_digest`) and raises
:class:`SignatureError` with a plain reason when it fails. Reasons never contain the
secret, the expected signature or the signature that was sent.

Schemes:

- ``none``: no check (a source that cannot sign, e.g. behind a private network).
- ``hmac-sha256``: HMAC-SHA256 of the raw body in one header, hex or base64, with an
  optional prefix. Covers Shopify (``X-Shopify-Hmac-Sha256``, base64), WooCommerce
  (``X-WC-Webhook-Signature``, base64), EasyPost (``X-Hmac-Signature``, hex, prefix
  ``hmac-sha256-hex=``, secret NFKD-normalised) and GitHub-style ``sha256=`` headers.
- ``standard-webhooks``: https://www.standardwebhooks.com/ — ``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature`` (space-separated ``v1,<base64>``), signed
  content ``{id}.{timestamp}.{body}``, secret ``whsec_`` + base64, and a timestamp
  tolerance (5 minutes by default).

The signing helpers (:func:`sign_hmac`, :func:`sign_standard_webhooks`) exist for the
emulators and the tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "HmacSignature",
    "NoSignature",
    "SignatureConfig",
    "SignatureError",
    "StandardWebhooksSignature",
    "sign_hmac",
    "sign_standard_webhooks",
    "verify",
]

Encoding = Literal["hex", "base64"]

_WHSEC_PREFIX = "whsec_"
_SW_ID = "webhook-id"
_SW_TIMESTAMP = "webhook-timestamp"
_SW_SIGNATURE = "webhook-signature"


class SignatureError(Exception):
    """A delivery failed its signature check. ``reason`` is plain and safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"SignatureError({self.reason!r})"


def _secret_error(secret: SecretStr, message: str) -> ValidationError:
    """A validation error about a secret whose input is shown masked, whatever the
    enclosing model's ``hide_input_in_errors`` says (a plain ``ValueError`` would make
    Pydantic echo the raw secret as ``input_value``)."""
    return ValidationError.from_exception_data(
        "secret",
        [{"type": PydanticCustomError("invalid_secret", message), "loc": (), "input": secret}],
    )


_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class NoSignature(BaseModel):
    """No signature check: every delivery is accepted."""

    model_config = _MODEL_CONFIG

    scheme: Literal["none"] = "none"


class HmacSignature(BaseModel):
    """HMAC-SHA256 of the raw body, carried in one header.

    ``prefix`` is stripped from the header value before decoding (``"sha256="`` for
    GitHub-style senders, ``"hmac-sha256-hex="`` for EasyPost). ``nfkd_secret`` applies
    Unicode NFKD to the secret before use, as EasyPost does.
    """

    model_config = _MODEL_CONFIG

    scheme: Literal["hmac-sha256"] = "hmac-sha256"
    header: str = Field(min_length=1)
    encoding: Encoding
    prefix: str = ""
    secret: SecretStr
    nfkd_secret: bool = False

    @field_validator("secret", mode="wrap")
    @classmethod
    def _secret_not_empty(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> SecretStr:
        secret: SecretStr = handler(value)
        if not secret.get_secret_value():
            raise _secret_error(secret, "the signing secret is empty")
        return secret


class StandardWebhooksSignature(BaseModel):
    """Standard Webhooks: ``webhook-id``/``webhook-timestamp``/``webhook-signature``."""

    model_config = _MODEL_CONFIG

    scheme: Literal["standard-webhooks"] = "standard-webhooks"
    secret: SecretStr
    tolerance_seconds: int = Field(default=300, ge=0)

    @field_validator("secret", mode="wrap")
    @classmethod
    def _secret_is_whsec(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> SecretStr:
        secret: SecretStr = handler(value)
        try:
            _standard_webhooks_key(secret)
        except ValueError as exc:
            raise _secret_error(secret, str(exc)) from None
        return secret


SignatureConfig = Annotated[
    NoSignature | HmacSignature | StandardWebhooksSignature,
    Field(discriminator="scheme"),
]
"""One inbound connection's signature scheme, chosen by its ``scheme`` field."""


# --- helpers ---------------------------------------------------------------------------


def _secret_text(secret: str | SecretStr) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def _hmac_key(secret: str | bytes | SecretStr, nfkd: bool) -> bytes:
    if isinstance(secret, bytes):
        return secret
    text = _secret_text(secret)
    if nfkd:
        text = unicodedata.normalize("NFKD", text)
    return text.encode("utf-8")


def _standard_webhooks_key(secret: str | SecretStr) -> bytes:
    """The raw key bytes of a ``whsec_`` secret (the prefix is optional, padding too)."""
    text = _secret_text(secret).strip()
    if text.startswith(_WHSEC_PREFIX):
        text = text[len(_WHSEC_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _tolerance_text(seconds: int) -> str:
    if seconds % 60 == 0 and seconds > 0:
        return f"{seconds // 60}-minute"
    return f"{seconds}-second"


# --- signing ---------------------------------------------------------------------------


def sign_hmac(
    secret: str | bytes | SecretStr,
    body: bytes,
    encoding: Encoding,
    prefix: str = "",
    *,
    nfkd_secret: bool = False,
) -> str:
    """The header value an HMAC-SHA256 sender would put on ``body``.

    >>> sign_hmac("s3cret", b"{}", "hex", prefix="hmac-sha256-hex=")[:16]
    'hmac-sha256-hex='
    """
    digest = hmac.new(_hmac_key(secret, nfkd_secret), body, hashlib.sha256).digest()
    if encoding == "hex":
        encoded = digest.hex()
    elif encoding == "base64":
        encoded = base64.b64encode(digest).decode("ascii")
    else:  # pragma: no cover - guarded by the Literal type
        raise ValueError(f"unknown encoding {encoding!r}")
    return prefix + encoded


def _standard_webhooks_digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, content, hashlib.sha256).digest()


def sign_standard_webhooks(
    secret: str | SecretStr, msg_id: str, timestamp: int | float, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``.

    ``timestamp`` is unix seconds (a float is truncated to whole seconds).
    """
    try:
        key = _standard_webhooks_key(secret)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    ts = str(int(timestamp))
    digest = _standard_webhooks_digest(key, msg_id, ts, body)
    return {
        _SW_ID: msg_id,
        _SW_TIMESTAMP: ts,
        _SW_SIGNATURE: "v1," + base64.b64encode(digest).decode("ascii"),
    }


# --- verification ----------------------------------------------------------------------


def verify(
    config: SignatureConfig | None,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Check one delivery's signature; raise :class:`SignatureError` if it fails.

    ``headers`` are looked up case-insensitively. ``body`` is the raw body, exactly as
    received. ``now`` (unix seconds) is for tests; the clock is used when it is ``None``.
    ``config=None`` means no signature is configured, like :class:`NoSignature`.
    """
    if config is None or isinstance(config, NoSignature):
        return
    lowered = _lower(headers)
    if isinstance(config, HmacSignature):
        _verify_hmac(config, lowered, body)
    elif isinstance(config, StandardWebhooksSignature):
        _verify_standard_webhooks(config, lowered, body, time.time() if now is None else now)
    else:  # pragma: no cover - guarded by the union type
        raise SignatureError("unknown signature scheme")


def _verify_hmac(config: HmacSignature, headers: Mapping[str, str], body: bytes) -> None:
    value = headers.get(config.header.lower())
    if value is None or not value.strip():
        raise SignatureError(f"missing header {config.header}")
    value = value.strip()
    if config.prefix:
        if not value.lower().startswith(config.prefix.lower()):
            raise SignatureError("malformed signature header")
        value = value[len(config.prefix) :].strip()
    try:
        if config.encoding == "hex":
            sent = bytes.fromhex(value)
        else:
            sent = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed signature header") from None
    key = _hmac_key(config.secret, config.nfkd_secret)
    expected = hmac.new(key, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, sent):
        raise SignatureError("signature does not match the body")


def _verify_standard_webhooks(
    config: StandardWebhooksSignature, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    for name in (_SW_ID, _SW_TIMESTAMP, _SW_SIGNATURE):
        if not headers.get(name, "").strip():
            raise SignatureError(f"missing header {name}")
    msg_id = headers[_SW_ID].strip()
    ts_text = headers[_SW_TIMESTAMP].strip()
    if not (ts_text.isascii() and ts_text.isdigit()):
        raise SignatureError(f"malformed header {_SW_TIMESTAMP}")
    if abs(now - int(ts_text)) > config.tolerance_seconds:
        raise SignatureError(
            f"timestamp outside the {_tolerance_text(config.tolerance_seconds)} tolerance"
        )
    candidates: list[bytes] = []
    malformed = 0
    for entry in headers[_SW_SIGNATURE].split():
        version, sep, encoded = entry.partition(",")
        if not sep:
            malformed += 1
            continue
        if version != "v1":  # other versions (e.g. v1a, asymmetric) are not ours to check
            continue
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            malformed += 1
    if not candidates:
        if malformed:
            raise SignatureError("malformed signature header")
        raise SignatureError("signature does not match the body")
    key = _standard_webhooks_key(config.secret)
    expected = _standard_webhooks_digest(key, msg_id, ts_text, body)
    matched = False
    for sent in candidates:  # check every entry: the time taken does not say which matched
        matched |= hmac.compare_digest(expected, sent)
    if not matched:
        raise SignatureError("signature does not match the body")
