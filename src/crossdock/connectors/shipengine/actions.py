"""ShipEngine writes: ``create_label`` and ``void_label``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from crossdock.connectors.shipengine.api import refusal_for
from crossdock.connectors.shipengine.mappers import (
    address_to_shipengine,
    external_shipment_id,
    label_to_shipment,
    packages_from_parcels,
)
from crossdock.model import Shipment
from crossdock.sdk import Action, ActionContext, ActionRefused, ActionResult, VendorError

if TYPE_CHECKING:
    from crossdock.connectors.shipengine import ShipEngineConnector

__all__ = ["CreateLabel", "VoidLabel"]


def _shipment(ctx: ActionContext) -> Shipment:
    try:
        return Shipment.model_validate(ctx.record)
    except ValidationError as exc:
        raise ActionRefused(
            "validation",
            f"The record is not a valid shipment: {exc.errors()[0].get('msg', exc)}",
            "Fix the flow's mapping so it hands ShipEngine a canonical Shipment, then replay.",
        ) from None


class CreateLabel(Action):
    """Buy a label for a canonical Shipment (``ctx.record``).

    ``ship_to`` is required; ``ship_from`` defaults from the settings; packages come from
    the parcels' weights (and dimensions); the service is ``record.service`` or the
    settings' ``default_service_code``; the carrier account is the settings'
    ``carrier_id``. ``external_shipment_id`` is derived from the idempotency key and is
    looked up before buying, so a repeat returns the label already bought.
    Result: ``external_id`` = label id, ``record`` = the Shipment with carrier, service,
    tracking number and URL, label ``{format, url}`` and status ``label_created``.
    """

    name = "create_label"
    description = "Buy a shipping label for a shipment (ShipEngine)."
    verifiable = True
    connector: ShipEngineConnector

    def _request(self, shipment: Shipment, ext_id: str) -> dict[str, Any]:
        s = self.connector.settings
        if shipment.ship_to is None:
            raise ActionRefused(
                "address",
                "The shipment has no ship-to address, so the carrier cannot make a label.",
                "Add the shipping address to the order (in the storefront or the warehouse "
                "shipment), then retry.",
            )
        ship_from = shipment.ship_from or s.ship_from
        if ship_from is None:
            raise ActionRefused(
                "address",
                "The shipment has no ship-from address and the connection has none set, so "
                "the carrier cannot make a label.",
                "Set ship_from (with a phone number) in the ShipEngine connection's "
                "settings, then retry.",
            )
        packages = packages_from_parcels(shipment)
        if not packages:
            raise ActionRefused(
                "validation",
                "The shipment has no parcels with a weight, so no label can be bought.",
                "Have the warehouse send parcel weights with the shipment, then retry.",
            )
        body: dict[str, Any] = {
            "carrier_id": s.carrier_id,
            "service_code": shipment.service or s.default_service_code,
            "external_shipment_id": ext_id,
            "external_order_id": shipment.order.id,
            "ship_to": address_to_shipengine(shipment.ship_to),
            "ship_from": address_to_shipengine(ship_from),
            "packages": packages,
        }
        if shipment.id and len(shipment.id) <= 50:
            body["shipment_number"] = shipment.id
        if shipment.lines:
            body["items"] = [
                {
                    "name": line.sku,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "external_order_id": shipment.order.id,
                    **(
                        {"external_order_item_id": line.order_line_id} if line.order_line_id else {}
                    ),
                }
                for line in shipment.lines
            ]
        return {
            "shipment": body,
            "label_format": s.label_format,
            "label_layout": s.label_layout,
            "label_download_type": "url",
            "test_label": s.test_label,
        }

    def _result(self, label: dict[str, Any], ctx: ActionContext) -> ActionResult:
        base = dict(ctx.record) if isinstance(ctx.record, dict) else {}
        record = label_to_shipment(label, connection=self.connector.connection, base=base)
        self.connector.remember(label, record)
        return ActionResult(
            external_id=str(label["label_id"]),
            record=record,
            detail=f"label {label['label_id']} tracking {label.get('tracking_number')}",
        )

    async def _find(self, ext_id: str) -> dict[str, Any] | None:
        resp = await self.connector.client.get(
            f"/v1/labels/external_shipment_id/{quote(ext_id, safe='')}",
            endpoint="/v1/labels/external_shipment_id",
            missing_ok=True,
        )
        if resp.status == 404:
            return None
        return resp.body if isinstance(resp.body, dict) and resp.body.get("label_id") else None

    async def perform(self, ctx: ActionContext) -> ActionResult:
        shipment = _shipment(ctx)
        ext_id = external_shipment_id(self.idempotency_key(ctx))
        existing = await self._find(ext_id)
        if existing is not None:
            return self._result(existing, ctx)
        request = self._request(shipment, ext_id)
        try:
            resp = await self.connector.client.post("/v1/labels", json=request)
        except VendorError as err:
            if err.status == 400:
                codes = {e.get("error_code") for e in _errors(err.body)}
                if "identifier_conflict" in codes:
                    # Bought by a concurrent attempt: return that label.
                    found = await self._find(ext_id)
                    if found is not None:
                        return self._result(found, ctx)
                refused = refusal_for(err.body, self.connector.settings.carrier_id)
                if refused is not None:
                    raise refused from None
            raise
        return self._result(resp.body, ctx)

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        found = await self._find(external_shipment_id(self.idempotency_key(ctx)))
        return self._result(found, ctx) if found is not None else None


def _errors(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


class VoidLabel(Action):
    """Void the label of a canonical Shipment (``ctx.record``).

    The label is found by ``ctx.xref`` (the label id create_label returned), else the
    record's ``id`` when it is a ShipEngine id (``se-...``), else the record's
    ``tracking_number`` (``GET /v1/labels?tracking_number=``). Voiding a label that is
    already voided succeeds without a second request. Result: ``external_id`` = label id,
    ``record`` = the Shipment with status ``cancelled``.
    """

    name = "void_label"
    description = "Void a shipping label (ShipEngine)."
    verifiable = True
    connector: ShipEngineConnector

    async def _label(self, ctx: ActionContext) -> dict[str, Any]:
        record = ctx.record if isinstance(ctx.record, dict) else {}
        label_id = ctx.xref
        if not label_id and str(record.get("id") or "").startswith("se-"):
            label_id = str(record["id"])
        client = self.connector.client
        if label_id:
            resp = await client.get(
                f"/v1/labels/{quote(label_id, safe='')}",
                endpoint="/v1/labels/{id}",
                missing_ok=True,
            )
            if resp.status != 404:
                return dict(resp.body)
        number = record.get("tracking_number")
        if number:
            resp = await client.get(
                "/v1/labels", params={"tracking_number": number, "page": 1, "page_size": 25}
            )
            labels = [lb for lb in (resp.body or {}).get("labels") or [] if isinstance(lb, dict)]
            live = [lb for lb in labels if lb.get("status") != "voided"] or labels
            if live:
                return dict(live[0])
        raise ActionRefused(
            "lookup",
            "ShipEngine has no label for this shipment (no label id, and no label with its "
            "tracking number), so there is nothing to void.",
            "Check the shipment's tracking number or the cross-reference to its label, then "
            "retry; or resolve this if the label was never bought.",
        )

    def _result(self, label: dict[str, Any], ctx: ActionContext) -> ActionResult:
        base = dict(ctx.record) if isinstance(ctx.record, dict) else {}
        label = {**label, "status": "voided"}
        record = label_to_shipment(label, connection=self.connector.connection, base=base)
        return ActionResult(
            external_id=str(label["label_id"]), record=record, detail=f"voided {label['label_id']}"
        )

    async def perform(self, ctx: ActionContext) -> ActionResult:
        label = await self._label(ctx)
        if label.get("status") == "voided" or label.get("voided") is True:
            return self._result(label, ctx)
        resp = await self.connector.client.put(
            f"/v1/labels/{quote(str(label['label_id']), safe='')}/void",
            endpoint="/v1/labels/{id}/void",
        )
        answer = resp.body if isinstance(resp.body, dict) else {}
        if not answer.get("approved"):
            if answer.get("reason_code") == "label_already_voided":
                return self._result(label, ctx)
            raise ActionRefused(
                "carrier_refused",
                f"The carrier would not void label {label['label_id']} (tracking "
                f"{label.get('tracking_number')}): {answer.get('message') or 'no reason given'}",
                "A label the carrier has already scanned cannot be voided: stop the parcel "
                "with the carrier or handle it as a return, then resolve this.",
            )
        return self._result(label, ctx)

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        label = await self._label(ctx)
        if label.get("status") == "voided" or label.get("voided") is True:
            return self._result(label, ctx)
        return None
