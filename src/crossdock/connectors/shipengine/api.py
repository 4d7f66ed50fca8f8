"""ShipEngine's wire details: error shape, classification, pagination, refusals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from crossdock.pipeline.outcome import Classified, Outcome, classify_response
from crossdock.sdk import ActionRefused
from crossdock.sdk.client import VendorResponse
from crossdock.sdk.pagination import NextRequest

__all__ = [
    "PagesPaginator",
    "classify",
    "errors_of",
    "refusal_for",
]

_FIELD_WORDS = {
    "name": "name",
    "phone": "phone number",
    "address_line1": "street address",
    "city_locality": "city",
    "state_province": "state or province",
    "postal_code": "postal code",
    "country_code": "country",
}


def errors_of(body: Any) -> list[dict[str, Any]]:
    """ShipEngine's ``errors[]`` (each with error_source, error_type, error_code, message)."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def _said(body: Any) -> str:
    errs = errors_of(body)
    return "; ".join(str(e.get("message") or e.get("error_code")) for e in errs)[:300]


def classify(response: httpx.Response, body: Any, connection: str) -> Classified:
    """HTTP status first (the hub's rules), with ShipEngine's own words as the detail."""
    where = f"'{connection}'"
    errs = errors_of(body)
    if response.status_code == 401:
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"ShipEngine refused the API key of {where} (HTTP 401).",
            f"Put a valid ShipEngine API key in connection {where}, then retry.",
        )
    if response.status_code == 400 and any(e.get("error_source") == "carrier" for e in errs):
        return Classified(
            Outcome.PERMANENT,
            "carrier_refused",
            f"The carrier refused the request: {_said(body)}",
            "Change the parcel or the service, then retry.",
        )
    return classify_response(response.status_code, response.headers, connection, _said(body))


def _field_words(field_name: str) -> tuple[str, str] | None:
    """('ship-to address', 'postal code') for ``shipment.ship_to.postal_code``."""
    parts = field_name.split(".")
    for i, part in enumerate(parts):
        if part in ("ship_to", "ship_from"):
            which = "ship-to address" if part == "ship_to" else "ship-from address"
            rest = parts[i + 1] if i + 1 < len(parts) else ""
            return which, _FIELD_WORDS.get(rest, rest.replace("_", " ") or "")
    return None


def refusal_for(body: Any, carrier_id: str) -> ActionRefused | None:
    """A business refusal in plain words from a ``400`` body, or None."""
    for err in errors_of(body):
        source = err.get("error_source")
        message = str(err.get("message") or "").strip()
        if source == "carrier":
            carrier = err.get("carrier_code") or err.get("carrier_id") or carrier_id
            return ActionRefused(
                "carrier_refused",
                f"The carrier ({carrier}) will not take this parcel, so no label was made. "
                f"It said: {message}",
                "Split the goods into lighter parcels, or send this shipment with a carrier "
                "or freight service that takes it, then retry.",
            )
        field_name = str(err.get("field_name") or "")
        if not field_name:
            # ShipEngine sometimes names the field only in the message.
            for token in message.replace(",", " ").split():
                if "ship_to" in token or "ship_from" in token:
                    field_name = token
                    break
        words = _field_words(field_name) if field_name else None
        if words is not None:
            which, what = words
            missing = err.get("error_code") == "field_value_required"
            if not what:
                reason = f"The shipment has no {which}, so the carrier cannot make a label."
            elif missing:
                reason = f"The {which} has no {what}, so the carrier cannot make a label."
            else:
                reason = (
                    f"The {which}'s {what} is not valid, so the carrier cannot make a label. "
                    f"ShipEngine said: {message}"
                )
            if which == "ship-to address":
                fix = (
                    f"Add the {what or 'address'} to the order's shipping address (in the "
                    "storefront or the warehouse shipment), then retry."
                )
            else:
                fix = (
                    f"Set the ship-from {what or 'address'} in the connection's settings "
                    "(ship_from), then retry."
                )
            return ActionRefused("address", reason, fix)
        if err.get("error_type") == "validation" and err.get("error_code") in (
            "invalid_field_value",
            "field_value_required",
            "invalid_identifier",
        ):
            return ActionRefused(
                "validation",
                f"ShipEngine rejected the label request: {message}",
                "Correct the shipment (service, carrier or parcels) or the connection's "
                "settings, then retry.",
            )
    return None


class PagesPaginator:
    """ShipEngine's ``page``/``page_size`` with ``pages`` in the body."""

    def __init__(self, size: int = 100) -> None:
        self.size = size

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "page": 1, "page_size": self.size}

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        page = int(params.get("page", 1))
        body = response.body if isinstance(response.body, dict) else {}
        pages = body.get("pages")
        if isinstance(pages, int) and page >= pages:
            return None
        if not items:
            return None
        return NextRequest(None, {**params, "page": page + 1})
