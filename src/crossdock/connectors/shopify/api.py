"""The Shopify Admin GraphQL client: one POST per document, cost-aware.

- Every call goes through the connection's :class:`~crossdock.sdk.client.VendorClient`
  (audit trail, one classification) with a :class:`~crossdock.sdk.ratelimits.CostBucket`
  that waits for the points a document asks for and then believes the vendor's own
  ``extensions.cost.throttleStatus``.
- :func:`classify` understands Shopify's GraphQL answers: a ``THROTTLED`` answer is HTTP
  200 with ``errors[0].extensions.code == "THROTTLED"`` -> ``rate_limited`` with a
  ``retry_after`` computed from the cost and the restore rate; other errors at HTTP 200
  are the request's fault (permanent) unless Shopify says it failed internally.
- Each answer's ``X-Shopify-API-Version`` is compared with the pinned version: when
  Shopify "fell forward" to a newer version, :attr:`ShopifyApi.answered_version` says
  which one answered, so the console can warn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import httpx
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    parse,
    value_from_ast_untyped,
)

from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.client import VendorClient, VendorResponse, default_classify
from crossdock.sdk.errors import VendorError

__all__ = ["ShopifyApi", "classify", "requested_cost", "throttle_wait"]

log = logging.getLogger(__name__)


def _first_error(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        return first if isinstance(first, dict) else {"message": str(first)}
    return None


def throttle_wait(body: Any) -> float:
    """Seconds until the bucket holds the points the throttled query asked for."""
    if not isinstance(body, dict):
        return 1.0
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        wanted = float(cost.get("requestedQueryCost") or 0)
        have = float(status.get("currentlyAvailable") or 0)
        rate = float(status.get("restoreRate") or 50) or 50.0
    except (TypeError, ValueError):
        return 1.0
    return max(1.0 / rate, math.ceil(max(0.0, wanted - have) / rate * 100) / 100)


def classify(response: httpx.Response, body: Any, connection: str) -> Classified:
    """Shopify's answer -> outcome (see the module docstring)."""
    where = f"'{connection}'"
    status = response.status_code
    if status == 200 and (err := _first_error(body)) is not None:
        raw_ext = err.get("extensions")
        ext: dict[str, Any] = raw_ext if isinstance(raw_ext, dict) else {}
        code = str(ext.get("code") or "")
        message = str(err.get("message") or "an error")[:300]
        if code == "THROTTLED":
            wait = throttle_wait(body)
            return Classified(
                Outcome.RATE_LIMITED,
                "rate_limited",
                f"Shopify {where} is throttling: the query costs more points than are "
                f"available right now (about {wait:g} s to restore).",
                "Nothing to do: Crossdock waits for the points to restore and tries again.",
                wait,
            )
        if code in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"):
            return Classified(
                Outcome.RETRYABLE,
                "unavailable",
                f"Shopify {where} failed internally. It said: {message}",
                "Usually temporary; Crossdock retries.",
            )
        if code == "ACCESS_DENIED":
            return Classified(
                Outcome.PERMANENT,
                "auth",
                f"Shopify {where} denied access. It said: {message}",
                "Give the app the missing access scope in Shopify, then retry.",
            )
        if code == "MAX_COST_EXCEEDED":
            return Classified(
                Outcome.PERMANENT,
                "rejected",
                f"Shopify {where} refused a query that costs more than the whole bucket.",
                "Lower the connection's orders_page_size, then retry.",
            )
        return Classified(
            Outcome.PERMANENT,
            "rejected",
            f"Shopify {where} rejected the request. It said: {message}",
            "Check the connection's api_version and the data sent, then retry.",
        )
    if status == 402:
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"Shopify {where} says the shop is frozen (HTTP 402: unpaid plan).",
            "The shop owner must settle the Shopify bill; then retry.",
        )
    if status == 423:
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"Shopify {where} says the shop is locked (HTTP 423).",
            "Contact Shopify support about the locked shop; then retry.",
        )
    return default_classify(response, body, connection)


# -- requested cost (Shopify's calculated query cost, estimated before sending) -----------


def _args(field: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in field.arguments or ():
        value = value_from_ast_untyped(a.value, dict(variables))
        if value is not Undefined:  # an absent variable is an absent argument
            out[a.name.value] = value
    return out


def _fields(
    sel: SelectionSetNode | None, frags: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    out: list[FieldNode] = []
    if sel is None:
        return out
    for s in sel.selections:
        if isinstance(s, FieldNode):
            out.append(s)
        elif isinstance(s, InlineFragmentNode):
            out += _fields(s.selection_set, frags)
        elif isinstance(s, FragmentSpreadNode) and s.name.value in frags:
            out += _fields(frags[s.name.value].selection_set, frags)
    return out


def _cost(
    sel: SelectionSetNode | None,
    frags: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    total = 0
    for f in _fields(sel, frags):
        if f.selection_set is None:
            continue  # scalars and enums are free
        args = _args(f, variables)
        size = args.get("first") or args.get("last")
        if isinstance(size, int):
            node = 0
            for child in _fields(f.selection_set, frags):
                if child.name.value == "nodes":
                    node += 1 + _cost(child.selection_set, frags, variables)
                elif child.name.value == "edges":
                    for e in _fields(child.selection_set, frags):
                        if e.name.value == "node":
                            node += 1 + _cost(e.selection_set, frags, variables)
                elif child.name.value != "pageInfo" and child.selection_set is not None:
                    node += 1 + _cost(child.selection_set, frags, variables)
            if not any(c.name.value in ("nodes", "edges") for c in _fields(f.selection_set, frags)):
                node += 1  # a plain list: each element is an object
            total += 2 + size * node
        else:
            total += 1 + _cost(f.selection_set, frags, variables)
    return total


def requested_cost(document: str, variables: Mapping[str, Any] | None = None) -> int:
    """Shopify's calculated cost of ``document``: objects 1, connections 2 + first x the
    cost of a node, scalars free, a mutation 10."""
    doc = parse(document)
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if not ops:
        return 1
    op = ops[0]
    vars_ = dict(variables or {})
    if op.operation is OperationType.MUTATION:
        return 10 * max(1, len(_fields(op.selection_set, frags)))
    return max(1, _cost(op.selection_set, frags, vars_))


class ShopifyApi:
    """Sends GraphQL documents for one connection."""

    def __init__(self, client: VendorClient, api_version: str) -> None:
        self.client = client
        self.api_version = api_version
        self.answered_version: str | None = None
        """The version Shopify answered with when it differs from the pinned one."""
        self.path = f"/admin/api/{api_version}/graphql.json"

    def _note_version(self, response: VendorResponse | httpx.Response) -> None:
        answered = response.headers.get("x-shopify-api-version")
        if answered and answered != self.api_version:
            if self.answered_version != answered:
                log.warning(
                    "Shopify answered with API version %s instead of the pinned %s "
                    "(the pinned version is no longer supported; Shopify fell forward)",
                    answered,
                    self.api_version,
                )
            self.answered_version = answered
        elif answered:
            self.answered_version = None

    async def execute(self, document: str, variables: Mapping[str, Any] | None = None) -> Any:
        """Run ``document``; return its ``data`` (raise :class:`VendorError`)."""
        resp = await self.request(document, variables)
        return resp.body.get("data") if isinstance(resp.body, dict) else None

    async def request(
        self, document: str, variables: Mapping[str, Any] | None = None
    ) -> VendorResponse:
        """Run ``document``; return the whole answer (``data``, ``extensions``)."""
        payload: dict[str, Any] = {"query": document}
        if variables:
            payload["variables"] = dict(variables)
        resp = await self.client.post(
            self.path,
            json=payload,
            endpoint="graphql",
            cost=float(requested_cost(document, variables)),
        )
        self._note_version(resp)
        if not isinstance(resp.body, dict) or "data" not in resp.body:
            raise VendorError(
                Classified(
                    Outcome.RETRYABLE,
                    "unavailable",
                    f"Shopify '{self.client.connection}' answered without data.",
                    "Usually temporary; Crossdock retries.",
                ),
                resp.status,
                resp.body,
            )
        return resp
