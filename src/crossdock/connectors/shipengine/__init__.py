"""ShipEngine (ShipStation API): multi-carrier labels, voids and tracking.

- Actions: ``create_label`` (canonical Shipment -> label; idempotent through
  ``external_shipment_id``, verified by lookup after a timeout) and ``void_label``.
- Stream: ``tracking`` (labels' tracking logs, polled) -> ``tracking.updated``.
- Webhooks: ``track`` (``API_TRACK``) -> ``tracking.updated``, RSA-signed (see
  :mod:`.webhooks`).

Tracking statuses are normalized with
:func:`crossdock.model.status.tracking_status_from_shipengine`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from crossdock.connectors.shipengine.actions import CreateLabel, VoidLabel
from crossdock.connectors.shipengine.api import classify
from crossdock.connectors.shipengine.settings import ShipEngineSettings
from crossdock.connectors.shipengine.streams import TrackingStream
from crossdock.connectors.shipengine.webhooks import KEYS, ShipEngineWebhooks
from crossdock.sdk import Connector, VendorClient, VendorError
from crossdock.sdk.auth import ApiKeyAuth
from crossdock.sdk.ratelimits import LeakyBucket

__all__ = ["ShipEngineConnector", "ShipEngineSettings"]

_RECENT: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_RECENT_MAX = 10_000


class ShipEngineConnector(Connector):
    """ShipEngine v1 REST API."""

    name = "shipengine"
    title = "ShipEngine"
    kind = "carrier"
    api_version = "v1"
    api_sunset = None  # ShipEngine has announced no end for v1 (now "ShipStation API").
    settings_model = ShipEngineSettings
    webhook_handler = ShipEngineWebhooks
    stream_types = (TrackingStream,)
    action_types = (CreateLabel, VoidLabel)
    emulator = "crossdock.emulators.shipengine:create_app"

    settings: ShipEngineSettings
    recent: ClassVar[OrderedDict[tuple[str, str], dict[str, Any]]] = _RECENT

    def setup(self) -> None:
        s = self.settings
        per_minute = float(s.requests_per_minute)
        self.client = VendorClient(
            self.http,
            connection=self.connection,
            base_url=s.base_url,
            auth=ApiKeyAuth("API-Key", s.api_key.get_secret_value()),
            rate=LeakyBucket(capacity=per_minute, leak_rate=per_minute / 60.0),
            classify=classify,
            redactor=self.redactor,
            timeout=s.timeout_seconds,
        )

    @property
    def jwks_url(self) -> str:
        """Where this connection's webhook signing keys are published."""
        return self.settings.jwks_url or self.settings.base_url.rstrip("/") + "/jwks"

    async def refresh_keys(self, *, quiet: bool = False, force: bool = False) -> int:
        """Fetch the webhook signing keys into the cache (unless fresh); their count."""
        url = self.jwks_url
        if force or not KEYS.fresh(url, self.settings.jwks_cache_seconds):
            try:
                resp = await self.http.get(url, headers={"Accept": "application/json"})
                if resp.status_code == 200:
                    KEYS.store(url, resp.json())
            except Exception:
                if not quiet:
                    raise
        return len(KEYS.keys.get(url, {}))

    def remember(self, label: dict[str, Any], record: dict[str, Any]) -> None:
        """Keep what a tracking number belongs to (order, shipment id, service) so a
        ``track`` webhook, which names only the tracking number, can carry it."""
        number = record.get("tracking_number") or label.get("tracking_number")
        if not number:
            return
        key = (self.connection, str(number))
        _RECENT[key] = {
            "order": record.get("order"),
            "id": record.get("id"),
            "service": record.get("service"),
        }
        _RECENT.move_to_end(key)
        while len(_RECENT) > _RECENT_MAX:
            _RECENT.popitem(last=False)

    def recall(self, tracking_number: str) -> dict[str, Any] | None:
        """What :meth:`remember` kept for ``tracking_number`` (this process only)."""
        return _RECENT.get((self.connection, tracking_number))

    async def subscribe_tracking(self, url: str) -> str:
        """Make sure ShipEngine sends ``track`` webhooks to ``url``; the webhook id."""
        listed = await self.client.get("/v1/environment/webhooks")
        for hook in listed.body or []:
            if isinstance(hook, dict) and hook.get("event") == "track" and hook.get("url") == url:
                return str(hook["webhook_id"])
        created = await self.client.post(
            "/v1/environment/webhooks",
            json={"event": "track", "url": url, "name": f"crossdock {self.connection}"},
        )
        return str(created.body["webhook_id"])

    async def check(self) -> str:
        resp = await self.client.get("/v1/carriers")
        carriers = [c for c in (resp.body or {}).get("carriers") or [] if isinstance(c, dict)]
        mine = [c for c in carriers if c.get("carrier_id") == self.settings.carrier_id]
        if not mine:
            from crossdock.pipeline.outcome import Classified, Outcome

            raise VendorError(
                Classified(
                    Outcome.PERMANENT,
                    "settings",
                    f"ShipEngine has no carrier account {self.settings.carrier_id} "
                    f"(it has: {', '.join(str(c.get('carrier_id')) for c in carriers)}).",
                    "Set carrier_id in the connection's settings to one of these, then retry.",
                )
            )
        await self.refresh_keys(quiet=True)
        c = mine[0]
        return (
            f"API key accepted; carrier {c.get('carrier_code')} ({c.get('carrier_id')}) "
            f"among {len(carriers)} carrier account(s)"
        )
