"""Dry-run: exactly what a flow would send for an event, without sending it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crossdock.flows.failures import MappingFailure
from crossdock.flows.flow import Flow
from crossdock.flows.keys import idempotency_key

if TYPE_CHECKING:
    from crossdock.project.config import ConnectionConfig

__all__ = ["DryRunResult", "dry_run"]


@dataclass(frozen=True)
class DryRunResult:
    """The request a flow would make for one event, or why it would not make one.

    ``would_send`` is False when the filter skips the event (``skipped_rule`` is
    ``"filter"``) or the mapping fails (``failure``). Auth headers are redacted. Whether
    the version is stale is not known here (that needs the store).
    """

    would_send: bool
    skipped_rule: str | None
    method: str | None
    url: str | None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    failure: MappingFailure | None = None
    operation: str | None = None


def _key(flow: Flow, ctx: Mapping[str, Any], operation: str) -> str:
    """The idempotency key the worker would send for this event and operation."""
    event = ctx.get("event") or {}
    version = event.get("version")
    return idempotency_key(
        flow.action.connection,
        str(event.get("key") or ""),
        operation,
        None if version is None else str(version),
    )


def dry_run(
    flow: Flow, ctx: Mapping[str, Any], connection: ConnectionConfig | None = None
) -> DryRunResult:
    """What ``flow`` would send for the event in ``ctx`` (body, headers, event, xref).

    ``connection`` is the action connection's settings (default: those the flow was
    checked against). Raises ``ValueError`` when there are none with outbound settings.
    """
    cfg = connection if connection is not None else flow.connection
    if cfg is not None and not cfg.is_http:
        return _dry_run_connector(flow, ctx, cfg)
    if cfg is None or cfg.outbound is None:
        raise ValueError(
            f"flow {flow.name}: connection '{flow.action.connection}' has no outbound "
            "settings here, so there is nothing to show"
        )
    outbound = cfg.outbound
    operation = flow.action.operation
    op = outbound.operations.get(operation)
    if op is None:
        raise ValueError(
            f"flow {flow.name}: connection '{cfg.name}' has no operation '{operation}'"
        )
    xref = ctx.get("xref")
    if xref and op.when_exists and op.when_exists in outbound.operations:
        operation = op.when_exists
        op = outbound.operations[operation]
    key = _key(flow, ctx, operation)
    try:
        if not flow.accepts(ctx):
            return DryRunResult(
                False, "filter", None, None, idempotency_key=key, operation=operation
            )
        rendered = flow.render(ctx)
    except MappingFailure as failure:
        return DryRunResult(
            False,
            None,
            op.method,
            None,
            idempotency_key=key,
            failure=failure,
            operation=operation,
        )
    from crossdock.connectors.http.outbound import build_request
    from crossdock.security.redact import redact_headers

    params: dict[str, Any] = {**rendered.path_params, "xref": xref}
    method, url, headers, _ = build_request(outbound, operation, rendered.body, params, key)
    return DryRunResult(
        True, None, method, url, redact_headers(headers), rendered.body, key, None, operation
    )


def _dry_run_connector(flow: Flow, ctx: Mapping[str, Any], cfg: ConnectionConfig) -> DryRunResult:
    """A named connector's action: the canonical record it would be given (the vendor
    requests it makes depend on what the vendor holds, so they are not shown)."""
    from crossdock.runtime.connectors import describe

    actions = describe(cfg).actions
    operation = flow.action.operation
    if operation not in actions:
        raise ValueError(
            f"flow {flow.name}: connector '{cfg.connector}' has no action '{operation}'"
        )
    xref = ctx.get("xref")
    when_exists = actions[operation]
    if xref and when_exists:
        operation = when_exists
    key = _key(flow, ctx, operation)
    target = f"{cfg.connector}:{operation}"
    try:
        if not flow.accepts(ctx):
            return DryRunResult(
                False, "filter", None, None, idempotency_key=key, operation=operation
            )
        rendered = flow.render(ctx)
    except MappingFailure as failure:
        return DryRunResult(
            False, None, "ACTION", target, idempotency_key=key, failure=failure, operation=operation
        )
    record = ctx.get("body") if rendered.body is None else rendered.body
    return DryRunResult(True, None, "ACTION", target, {}, record, key, None, operation)
