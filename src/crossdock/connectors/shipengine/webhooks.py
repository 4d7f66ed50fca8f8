"""ShipEngine webhooks: RSA-SHA256 signatures checked against a JWKS, ``track`` parsed.

ShipEngine signs every webhook (docs.shipstation.com, "Webhook Validation"): headers
``x-shipengine-rsa-sha256-key-id``, ``x-shipengine-rsa-sha256-signature`` and
``x-shipengine-timestamp``; the timestamp should be within 5 minutes; the raw body must
be used. The signed message is ``"{timestamp}.{raw body}"`` (RSA PKCS#1 v1.5, SHA-256,
base64 signature) and the keys are a JWKS at ``https://api.shipengine.com/jwks`` [3P:
seen in third-party verifiers, not in ShipEngine's own text]; the URL is the
``jwks_url`` setting.

Keys are cached per JWKS URL for the process (``jwks_cache_seconds``). The connector
refreshes them asynchronously (``refresh_keys``: on ``check()`` and each tracking poll);
a delivery signed by an unknown key id triggers one blocking fetch
before it is rejected (the SDK's ``verify`` is synchronous).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from crossdock.connectors.shipengine.mappers import order_ref_of, tracking_to_shipment, version_of
from crossdock.sdk import IncomingEvent, SignatureRejected, WebhookHandler

if TYPE_CHECKING:
    from crossdock.connectors.shipengine import ShipEngineConnector

__all__ = ["KEYS", "ShipEngineWebhooks", "keys_from_jwks"]

KEY_ID = "x-shipengine-rsa-sha256-key-id"
SIGNATURE = "x-shipengine-rsa-sha256-signature"
TIMESTAMP = "x-shipengine-timestamp"


def _b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def keys_from_jwks(jwks: Any) -> dict[str, rsa.RSAPublicKey]:
    """RSA public keys by ``kid`` from a JWKS document (other key types are skipped)."""
    out: dict[str, rsa.RSAPublicKey] = {}
    for jwk in (jwks or {}).get("keys") or [] if isinstance(jwks, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
            continue
        try:
            numbers = rsa.RSAPublicNumbers(_b64url_int(jwk["e"]), _b64url_int(jwk["n"]))
            out[str(jwk["kid"])] = numbers.public_key()
        except (KeyError, ValueError, binascii.Error):
            continue
    return out


class KeyCache:
    """Public keys per JWKS URL, shared by every connection of the process."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        self.fetched: dict[str, float] = {}

    def fresh(self, url: str, max_age: float) -> bool:
        """Whether ``url``'s keys were fetched less than ``max_age`` seconds ago."""
        return url in self.fetched and time.monotonic() - self.fetched[url] < max_age

    def store(self, url: str, jwks: Any) -> None:
        """Keep the keys of ``url``'s JWKS."""
        self.keys[url] = keys_from_jwks(jwks)
        self.fetched[url] = time.monotonic()

    def get(self, url: str, kid: str) -> rsa.RSAPublicKey | None:
        """The key ``kid`` of ``url``, if cached."""
        return self.keys.get(url, {}).get(kid)


KEYS = KeyCache()


class ShipEngineWebhooks(WebhookHandler):
    """Verify ShipEngine's RSA signature; ``API_TRACK`` -> ``tracking.updated``."""

    connector: ShipEngineConnector

    def _key(self, kid: str) -> rsa.RSAPublicKey | None:
        url = self.connector.jwks_url
        key = KEYS.get(url, kid)
        if key is None and url.startswith(("http://", "https://")):
            # Unknown key id (rotation or a cold cache): one blocking fetch.
            try:
                r = httpx.get(url, timeout=5.0, headers={"Accept": "application/json"})
                if r.status_code == 200:
                    KEYS.store(url, r.json())
            except (httpx.HTTPError, ValueError):
                return None
            key = KEYS.get(url, kid)
        return key

    async def prepare(self, headers: Mapping[str, str], raw: bytes) -> None:
        """Fetch the JWKS (without blocking the loop) when the key id is not cached."""
        kid = headers.get(KEY_ID)
        url = self.connector.jwks_url
        # At most one fetch per 10 s: unknown key ids must not make us hammer the JWKS.
        if kid and KEYS.get(url, kid) is None and not KEYS.fresh(url, 10.0):
            await self.connector.refresh_keys(quiet=True, force=True)

    def verify(self, headers: Mapping[str, str], raw: bytes) -> None:
        kid = headers.get(KEY_ID)
        given = headers.get(SIGNATURE)
        stamp = headers.get(TIMESTAMP)
        missing = [n for n, v in ((KEY_ID, kid), (SIGNATURE, given), (TIMESTAMP, stamp)) if not v]
        if missing:
            raise SignatureRejected(f"required header(s) missing: {', '.join(missing)}")
        assert kid is not None and given is not None and stamp is not None
        try:
            sent = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SignatureRejected(f"the {TIMESTAMP} header is not an ISO 8601 time") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        skew = abs((datetime.now(UTC) - sent).total_seconds())
        if skew > self.connector.settings.webhook_tolerance_seconds:
            raise SignatureRejected(
                f"the {TIMESTAMP} header is {int(skew)} s away from now (replay window "
                f"{int(self.connector.settings.webhook_tolerance_seconds)} s)"
            )
        key = self._key(kid)
        if key is None:
            raise SignatureRejected(
                f"the signing key {kid!r} is not published at the connection's JWKS URL"
            )
        try:
            signature = base64.b64decode(given.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRejected(f"the {SIGNATURE} header is not base64") from None
        try:
            key.verify(signature, stamp.encode() + b"." + raw, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureRejected(f"the {SIGNATURE} header does not match the body") from None

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[IncomingEvent]:
        payload = orjson.loads(raw)
        if not isinstance(payload, dict):
            return []
        kind = str(payload.get("resource_type") or "").upper()
        if kind not in ("API_TRACK", "TRACK", "TRACK_EVENT_V2"):
            return []
        info = payload.get("data")
        if not isinstance(info, dict) or not info.get("tracking_number"):
            return []
        conn = self.connector
        number = str(info["tracking_number"])
        cached = conn.recall(number) or {}
        order = cached.get("order") or order_ref_of(
            {"tracking_number": number, "external_order_id": info.get("external_order_id")},
            conn.connection,
        )
        record = tracking_to_shipment(
            info,
            order=order,
            carrier=info.get("carrier_code"),
            shipment_id=cached.get("id"),
            base={"service": cached.get("service")},
        )
        return [
            IncomingEvent(
                type="tracking.updated",
                record_key=number,
                record=record,
                version=version_of(info),
            )
        ]
