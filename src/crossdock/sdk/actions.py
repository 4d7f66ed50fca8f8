"""Actions: a connector's writes, each with its idempotency key and a lookup.

The hub hands an action an :class:`ActionContext` (the record to write, the idempotency
key derived from destination, record, operation and source version, the cross-reference
if the record already exists there) and runs it with :func:`run_action`:

- success -> an :class:`ActionResult` (the id at the destination, becoming the
  cross-reference; a record for follow-up events);
- :class:`~crossdock.sdk.errors.ActionRefused` -> an exception a person works;
- :class:`~crossdock.sdk.errors.VendorError` -> retry / back off / exception as
  classified; when the outcome is *uncertain* (the request left, no answer came),
  :meth:`Action.lookup` asks the destination whether the write happened before anything
  is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.errors import ActionRefused, ConnectorError, VendorError

__all__ = ["Action", "ActionContext", "ActionResult", "run_action"]


@dataclass
class ActionContext:
    """Everything an action needs to make one write."""

    record: Any
    idempotency_key: str
    record_key: str
    version: str | None = None
    xref: str | None = None
    event_type: str = ""
    source_connection: str = ""
    correlation_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionResult:
    """A write that happened: the id at the destination and what to tell later flows."""

    external_id: str | None = None
    record: Any = None
    detail: str = ""
    verified: bool = False


class Action:
    """One write a connector can make. Subclasses set ``name`` and implement
    :meth:`perform`; a write whose outcome can be uncertain implements :meth:`lookup`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    when_exists: ClassVar[str | None] = None
    """The action to use instead when the record already has a cross-reference here
    (create -> update)."""
    verifiable: ClassVar[bool] = False
    """Whether :meth:`lookup` can tell if an uncertain write happened."""

    def __init__(self, connector: Any) -> None:
        self.connector = connector

    def idempotency_key(self, ctx: ActionContext) -> str:
        """The key that makes a repeat of this write harmless (default: the hub's)."""
        return ctx.idempotency_key

    async def perform(self, ctx: ActionContext) -> ActionResult:
        """Make the write; raise ``VendorError`` or ``ActionRefused`` on failure."""
        raise NotImplementedError

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        """Whether the write with this idempotency key exists at the destination:
        its result if it does, ``None`` if it surely does not."""
        raise NotImplementedError


async def run_action(action: Action, ctx: ActionContext) -> tuple[Classified, ActionResult | None]:
    """Run ``action`` once, verifying an uncertain outcome; never raises for vendor or
    data problems."""
    try:
        result = await action.perform(ctx)
        return Classified(Outcome.SUCCESS, "ok", result.detail or "delivered", ""), result
    except ActionRefused as refused:
        return refused.classified(), None
    except VendorError as err:
        if err.outcome is not Outcome.UNCERTAIN or not action.verifiable:
            return err.classified, None
        try:
            found = await action.lookup(ctx)
        except ConnectorError:  # the check itself failed: still uncertain
            return err.classified, None
        if found is not None:
            found.verified = True
            return (
                Classified(
                    Outcome.SUCCESS, "verified", "verified at the destination after a timeout", ""
                ),
                found,
            )
        return (
            Classified(
                Outcome.RETRYABLE,
                "timeout",
                f"{err.classified.reason} The destination has no record of it.",
                "Nothing to do: it is safe to send again, and Crossdock will.",
            ),
            None,
        )
