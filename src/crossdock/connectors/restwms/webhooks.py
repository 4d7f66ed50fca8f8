"""Webhooks of a declared WMS: signature from :mod:`crossdock.ingest.signatures`, the
event type read by an expression, each event type mapped to a canonical record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from crossdock.connectors.restwms.definition import SITE, CompiledWebhook
from crossdock.connectors.restwms.records import RecordMappingError, key_value, to_record
from crossdock.flows.failures import MappingFailure, evaluate
from crossdock.ingest.signatures import SignatureError, verify
from crossdock.sdk.errors import SignatureRejected
from crossdock.sdk.events import IncomingEvent
from crossdock.sdk.webhooks import WebhookHandler

if TYPE_CHECKING:
    from crossdock.connectors.restwms import RestWmsConnector

__all__ = ["RestWmsWebhooks"]


class RestWmsWebhooks(WebhookHandler):
    """Verify, then parse one WMS delivery into zero or one canonical event."""

    def __init__(self, connector: RestWmsConnector) -> None:
        super().__init__(connector)
        assert connector.settings.webhook is not None
        self.signature = connector.settings.webhook.signature
        compiled = connector.definition.webhook
        assert compiled is not None
        self.hook: CompiledWebhook = compiled

    def verify(self, headers: Mapping[str, str], raw: bytes) -> None:
        try:
            verify(self.signature, headers, raw)
        except SignatureError as exc:
            raise SignatureRejected(exc.reason) from None

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[IncomingEvent]:
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RecordMappingError("the webhook body is not JSON") from None
        hdrs = {k.lower(): v for k, v in headers.items()}
        ctx = {"body": body, "headers": hdrs}
        try:
            kind = evaluate(
                self.hook.event_type, ctx, field="webhook.event_type", line=0, site=SITE
            )
        except MappingFailure as failure:
            raise RecordMappingError(f"webhook.event_type: {failure.reason}") from None
        ev = self.hook.events.get(str(kind))
        if ev is None:
            return []  # an event type the definition does not use: acknowledged, ignored
        where = f"webhook.events.{kind}"
        try:
            data = evaluate(ev.data, ctx, field=f"{where}.data", line=0, site=SITE)
        except MappingFailure as failure:
            raise RecordMappingError(f"{where}.data: {failure.reason}") from None
        mctx = {**ctx, "data": data}
        record = to_record(ev.mapping, mctx, ev.emit, ev.mapping_name)
        kctx = {**mctx, "record": record}
        key = key_value(ev.record_key, kctx, f"{where}.record_key")
        if key is None:
            raise RecordMappingError(f"{where}.record_key gave an empty key")
        event_id = key_value(ev.event_id, kctx, f"{where}.event_id") or key_value(
            self.hook.event_id, ctx, "webhook.event_id"
        )
        return [
            IncomingEvent(
                type=ev.emit,
                record_key=key,
                record=record,
                version=key_value(ev.version, kctx, f"{where}.version"),
                event_id=event_id,
                headers=dict(hdrs),
            )
        ]
