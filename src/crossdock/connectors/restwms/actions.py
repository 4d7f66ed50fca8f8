"""The writes of a declared WMS: ``create_order``, ``update_order``, ``cancel_order``.

Each is built from its endpoint (see :func:`action_class`): the request path, query and
body come from the definition's templates and mappings, the idempotency key goes out in
the endpoint's ``idempotency_header``, the WMS id is read with ``external_id``, and the
endpoint's ``lookup`` verifies an uncertain outcome. An error answer matching one of the
definition's ``errors`` rules becomes an :class:`~crossdock.sdk.errors.ActionRefused`
with the rule's plain reason and fix.

``ctx.record`` is the canonical Order (JSON); missing optional fields are filled with
``null`` before mapping, so a mapping can read ``record.shipping_address.company``
without guarding every key. ``reference`` is the order's id (``record.id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from crossdock.connectors.restwms.definition import (
    SITE,
    CompiledLookup,
    CompiledWrite,
    Template,
    render,
)
from crossdock.flows.expressions import to_json_value
from crossdock.flows.failures import MappingFailure, evaluate
from crossdock.model import Order
from crossdock.sdk.actions import Action, ActionContext, ActionResult
from crossdock.sdk.errors import ActionRefused, VendorError

if TYPE_CHECKING:
    from crossdock.connectors.restwms import RestWmsConnector

__all__ = ["WriteAction", "action_class", "find"]

_VERBS = {"create_order": "created", "update_order": "updated", "cancel_order": "cancelled"}


def _normalise(record: Any) -> Any:
    """The canonical Order with every field present (``null`` when unknown)."""
    if isinstance(record, Mapping):
        try:
            return Order.model_validate(record).model_dump(mode="json")
        except ValidationError:
            return dict(record)
    return record


def _refuse_mapping(failure: MappingFailure, what: str) -> ActionRefused:
    return ActionRefused(
        "mapping",
        f"The order could not be turned into the warehouse's format: {failure.reason}.",
        f"Correct the order in the source system, or the {what} in the connection's "
        "definition; then retry the delivery.",
    )


def _params(params: Mapping[str, Any], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        k: v.render(values, f"{where}.params.{k}") if isinstance(v, Template) else v
        for k, v in params.items()
    }


async def find(
    connector: RestWmsConnector,
    lookup: CompiledLookup,
    values: Mapping[str, Any],
    record: Any,
    where: str,
) -> ActionResult | None:
    """Run a lookup: the WMS record's id if it is there, ``None`` if it surely is not."""
    try:
        path = lookup.path.render(values, f"{where}.path", quote=True)
        params = _params(lookup.params, values, where)
    except MappingFailure as failure:
        raise _refuse_mapping(failure, f"'{where}'") from None
    resp = await connector.api.request(
        lookup.method, path, params=params or None, endpoint=lookup.path.source, missing_ok=True
    )
    if resp.status == 404:
        return None
    rctx = {**values, "response": resp.body}
    try:
        items: Any = (
            evaluate(lookup.items, rctx, field=f"{where}.items", line=0, site=SITE)
            if lookup.items is not None
            else resp.body
        )
    except MappingFailure:
        return None
    if items is None:
        return None
    for item in items if isinstance(items, list) else [items]:
        ictx = {**rctx, "item": item}
        if lookup.match is not None:
            try:
                if not evaluate(lookup.match, ictx, field=f"{where}.match", line=0, site=SITE):
                    continue
            except MappingFailure:
                continue
        try:
            ext = evaluate(
                lookup.external_id, ictx, field=f"{where}.external_id", line=0, site=SITE
            )
        except MappingFailure as failure:
            raise _refuse_mapping(failure, f"'{where}.external_id'") from None
        if ext is None or ext == "":
            continue
        return ActionResult(external_id=str(to_json_value(ext)), record=record)
    return None


class WriteAction(Action):
    """One declared write (subclassed per endpoint by :func:`action_class`)."""

    endpoint: ClassVar[str]

    def __init__(self, connector: RestWmsConnector) -> None:
        super().__init__(connector)
        self.wms: RestWmsConnector = connector
        self.write: CompiledWrite = connector.definition.writes[self.endpoint]

    # -- values -------------------------------------------------------------------------

    def _base(self, ctx: ActionContext) -> dict[str, Any]:
        record = _normalise(ctx.record)
        ref = record.get("id") if isinstance(record, Mapping) else None
        return {
            "record": record,
            "reference": str(ref) if ref not in (None, "") else ctx.record_key,
            "xref": ctx.xref,
            "idempotency_key": self.idempotency_key(ctx),
        }

    def _needs_xref(self) -> bool:
        uses = set(self.write.path.names)
        for v in self.write.params.values():
            if isinstance(v, Template):
                uses |= v.names
        if self.write.lookup is not None:
            uses |= self.write.lookup.path.names
        return "xref" in uses

    async def _values(self, ctx: ActionContext) -> dict[str, Any]:
        values = self._base(ctx)
        if values["xref"] is None and self._needs_xref():
            # No cross-reference yet (the order reached the WMS another way, or the hub
            # lost the answer): find the WMS id by reference with create_order's lookup.
            found = await self.wms.find_order(values, ctx.record)
            if found is None:
                raise ActionRefused(
                    "not_found",
                    f"The warehouse has no order with reference {values['reference']}, so it "
                    f"cannot be {_VERBS.get(self.name, 'changed')}.",
                    "Send the order to the warehouse first (create_order), then retry.",
                )
            values["xref"] = found.external_id
        return values

    # -- the write ----------------------------------------------------------------------

    async def perform(self, ctx: ActionContext) -> ActionResult:
        w = self.write
        values = await self._values(ctx)
        where = f"endpoints.{self.name}"
        if w.check_first and w.lookup is not None:
            found = await find(self.wms, w.lookup, values, ctx.record, f"{where}.lookup")
            if found is not None:
                found.detail = "the warehouse already had it"
                return found
        try:
            path = w.path.render(values, f"{where}.path", quote=True)
            params = _params(w.params, values, where)
        except MappingFailure as failure:
            raise _refuse_mapping(failure, f"'{where}.path'") from None
        try:
            body = render(w.body, values) if w.body is not None else None
        except MappingFailure as failure:
            raise _refuse_mapping(failure, f"mapping '{w.body_name}'") from None
        headers = {w.idempotency_header: values["idempotency_key"]} if w.idempotency_header else {}
        try:
            resp = await self.wms.api.request(
                w.method,
                path,
                json=body,
                params=params or None,
                headers=headers,
                endpoint=w.path.source,
            )
        except VendorError as err:
            refused = self.wms.api.refusal(err)
            if refused is not None:
                raise refused from None
            raise
        external: Any = values["xref"]
        if w.external_id is not None:
            rctx = {
                **values,
                "response": resp.body,
                "headers": {k.lower(): v for k, v in resp.headers.items()},
                "status": resp.status,
            }
            try:
                external = evaluate(
                    w.external_id, rctx, field=f"{where}.external_id", line=0, site=SITE
                )
            except MappingFailure as failure:
                raise ActionRefused(
                    "mapping",
                    f"The warehouse accepted the request but its answer has no id where the "
                    f"definition looks for it: {failure.reason}.",
                    f"Correct '{where}.external_id' in the connection's definition.",
                ) from None
        return ActionResult(
            external_id=str(to_json_value(external)) if external not in (None, "") else None,
            record=ctx.record,
            detail=f"{w.method} {path}: HTTP {resp.status}",
        )

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        if self.write.lookup is None:  # pragma: no cover - verifiable is False then
            raise NotImplementedError
        values = await self._values(ctx)
        return await find(
            self.wms, self.write.lookup, values, ctx.record, f"endpoints.{self.name}.lookup"
        )


def action_class(write: CompiledWrite) -> type[WriteAction]:
    """The :class:`WriteAction` subclass for one declared write endpoint."""
    attrs: dict[str, Any] = {
        "name": write.name,
        "endpoint": write.name,
        "description": f"{write.method} {write.path.source}",
        "when_exists": write.when_exists,
        "verifiable": write.lookup is not None,
        "__module__": __name__,
    }
    name = "".join(p.title() for p in write.name.split("_"))
    return type(name, (WriteAction,), attrs)
