"""JSON Schema (draft 2020-12) export of the canonical records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from crossdock.model.inventory import InventoryLevel
from crossdock.model.invoice import Invoice
from crossdock.model.order import Order
from crossdock.model.product import Product
from crossdock.model.returns import Return
from crossdock.model.shipment import Shipment

__all__ = [
    "DRAFT_2020_12",
    "MODEL_VERSION",
    "RECORD_TYPES",
    "SCHEMA_BASE",
    "canonical_json_schema",
]

MODEL_VERSION = "1"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = f"https://crossdock.dev/schema/v{MODEL_VERSION}"

RECORD_TYPES: dict[str, type[BaseModel]] = {
    "order": Order,
    "product": Product,
    "inventory_level": InventoryLevel,
    "shipment": Shipment,
    "invoice": Invoice,
    "return": Return,
}
"""Record type name -> canonical model."""


def canonical_json_schema(record: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one record type (e.g. `"order"`), or of all of them when `record`
    is None: then every record and part is under `$defs` and the document accepts any
    record (`anyOf`). Raises `ValueError` for an unknown record type."""
    if record is None:
        _, top = models_json_schema(
            [(model, "validation") for model in RECORD_TYPES.values()],
            ref_template="#/$defs/{model}",
        )
        defs = top.get("$defs", {})
        return {
            "$schema": DRAFT_2020_12,
            "$id": f"{SCHEMA_BASE}/crossdock.json",
            "title": f"Crossdock canonical records v{MODEL_VERSION}",
            "anyOf": [{"$ref": f"#/$defs/{m.__name__}"} for m in RECORD_TYPES.values()],
            "$defs": defs,
            "x-crossdock-records": {
                name: f"#/$defs/{m.__name__}" for name, m in RECORD_TYPES.items()
            },
        }
    model = RECORD_TYPES.get(record)
    if model is None:
        allowed = ", ".join(RECORD_TYPES)
        raise ValueError(f"unknown record type {record!r}; expected one of: {allowed}")
    body = model.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
    return {"$schema": DRAFT_2020_12, "$id": f"{SCHEMA_BASE}/{record}.json", **body}
