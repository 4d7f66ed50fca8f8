"""The ``tracking`` stream: tracking of the labels bought, polled.

Each round lists the account's labels created in the last ``tracking_lookback_days``
(``GET /v1/labels?created_at_start=...&sort_by=created_at&sort_dir=asc``, page by page),
skips voided ones, reads each label's tracking log (``GET /v1/labels/{id}/track``) and
yields a ``tracking.updated`` event for every label whose latest scan is after the
cursor. The cursor is the time of the latest scan seen; ``version`` is that time plus
the number of scans, the same as the ``track`` webhook gives, so a poll and a webhook of
the same scan are one event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crossdock.connectors.shipengine.api import PagesPaginator
from crossdock.connectors.shipengine.mappers import (
    order_ref_of,
    position_of,
    tracking_to_shipment,
    version_of,
)
from crossdock.sdk import Cursor, IncomingEvent, Stream
from crossdock.sdk.pagination import paginate

if TYPE_CHECKING:
    from crossdock.connectors.shipengine import ShipEngineConnector

__all__ = ["TrackingStream"]


class TrackingStream(Stream):
    """Tracking updates of the labels bought through this account."""

    name = "tracking"
    event_types = ("tracking.updated",)
    lag_seconds = 60.0
    interval_seconds = 300.0
    connector: ShipEngineConnector

    async def read(self, cursor: Cursor) -> AsyncIterator[IncomingEvent]:
        conn = self.connector
        await conn.refresh_keys(quiet=True)
        since = datetime.now(UTC) - timedelta(days=conn.settings.tracking_lookback_days)
        params = {
            "created_at_start": since.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "sort_by": "created_at",
            "sort_dir": "asc",
        }
        start = cursor.start()
        found: list[tuple[str, str, IncomingEvent]] = []
        async for page in paginate(
            conn.client,
            "/v1/labels",
            paginator=PagesPaginator(conn.settings.page_size),
            items=lambda r: list((r.body or {}).get("labels") or []),
            params=params,
        ):
            for label in page:
                event = await self._event(label)
                if event is None or event.position is None:
                    continue
                if event.position < start or cursor.seen(event.position, event.record_key):
                    continue
                found.append((event.position, event.record_key, event))
        found.sort(key=lambda t: (t[0], t[1]))
        for position, key, event in found:
            cursor.advance(position, key)
            yield event

    async def _event(self, label: dict[str, Any]) -> IncomingEvent | None:
        if not isinstance(label, dict) or label.get("status") == "voided":
            return None
        if not label.get("trackable", True) or not label.get("label_id"):
            return None
        conn = self.connector
        resp = await conn.client.get(
            f"/v1/labels/{label['label_id']}/track", endpoint="/v1/labels/{id}/track"
        )
        info = resp.body if isinstance(resp.body, dict) else {}
        position = position_of(info)
        if position is None:
            return None
        shipment = label.get("shipment") if isinstance(label.get("shipment"), dict) else {}
        cached = conn.recall(str(info.get("tracking_number") or label.get("tracking_number")))
        record = tracking_to_shipment(
            info,
            order=(cached or {}).get("order") or order_ref_of(label, conn.connection),
            carrier=label.get("carrier_code"),
            shipment_id=(shipment or {}).get("shipment_number") or label.get("label_id"),
            base={"service": label.get("service_code")},
        )
        conn.remember(label, record)
        return IncomingEvent(
            type="tracking.updated",
            record_key=str(record["tracking_number"]),
            record=record,
            version=version_of(info),
            position=position,
        )
