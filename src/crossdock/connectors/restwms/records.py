"""From a WMS object to a canonical record, through a declared mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from crossdock.connectors.restwms.definition import SITE, drop_nulls, render
from crossdock.flows.expressions import Expression, to_json_value
from crossdock.flows.failures import MappingFailure, evaluate
from crossdock.flows.mapping import MappingNode
from crossdock.sdk.errors import ConnectorError
from crossdock.sdk.events import canonical_model_for

__all__ = ["RecordMappingError", "key_value", "to_record"]


class RecordMappingError(ConnectorError):
    """A WMS object could not be mapped to a valid canonical record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_record(
    node: MappingNode, ctx: Mapping[str, Any], event_type: str, mapping_name: str
) -> dict[str, Any]:
    """The canonical record (JSON) for ``event_type`` mapped by ``node`` from ``ctx``."""
    try:
        raw = drop_nulls(render(node, ctx))
    except MappingFailure as failure:
        raise RecordMappingError(
            f"mapping '{mapping_name}' failed: {failure.reason}. Check the WMS payload or "
            f"mappings.{mapping_name} in the connection's definition."
        ) from None
    model = canonical_model_for(event_type)
    if model is None:  # pragma: no cover - checked when the definition is compiled
        return dict(raw)
    try:
        return model.model_validate(raw).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the record"
        raise RecordMappingError(
            f"mapping '{mapping_name}' made an invalid {model.__name__}: {where}: "
            f"{first['msg']}. Correct mappings.{mapping_name} in the connection's definition."
        ) from None


def key_value(expr: Expression | None, ctx: Mapping[str, Any], what: str) -> str | None:
    """A record key, version or event id as text (``None`` when absent)."""
    if expr is None:
        return None
    try:
        value = to_json_value(evaluate(expr, ctx, field=what, line=0, site=SITE))
    except MappingFailure as failure:
        raise RecordMappingError(f"{what} could not be read: {failure.reason}") from None
    if value is None or value == "":
        return None
    return str(value)
