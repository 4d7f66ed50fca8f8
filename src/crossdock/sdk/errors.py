"""Every error a connector raises, in one module.

::

    ConnectorError                  base of everything a connector raises on purpose
    ├── VendorError                 the vendor answered (or did not) and the call failed;
    │                               carries the classified outcome and the exchange
    ├── ActionRefused               the write cannot be made with this data (a person acts):
    │                               unknown SKU, missing address field, parcel refused
    ├── SignatureRejected           a webhook's signature or required headers are wrong
    └── UnknownConnector            no connector of that name is installed

A connector never returns ``None`` for "it failed": it raises one of these, and the hub
turns it into a retry, a verification or an exception with the reason and the fix.
"""

from __future__ import annotations

from crossdock.pipeline.outcome import Classified, Outcome

__all__ = [
    "ActionRefused",
    "ConnectorError",
    "SignatureRejected",
    "UnknownConnector",
    "VendorError",
]


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""


class VendorError(ConnectorError):
    """A vendor call failed; ``classified`` says what the hub should do next."""

    def __init__(self, classified: Classified, status: int | None = None, body: object = None):
        super().__init__(classified.reason)
        self.classified = classified
        self.status = status
        self.body = body

    @property
    def outcome(self) -> Outcome:
        """The outcome category (retryable, rate_limited, uncertain, permanent)."""
        return self.classified.outcome


class ActionRefused(ConnectorError):
    """The write cannot succeed with this data: a person must fix the data or a lookup.

    ``category`` groups cases in the exception queue (``unknown_sku``, ``address``,
    ``carrier_refused`` ...); ``reason`` and ``fix`` are plain words for operations.
    """

    def __init__(self, category: str, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason
        self.fix = fix

    def classified(self) -> Classified:
        """This refusal as a permanent outcome."""
        return Classified(Outcome.PERMANENT, self.category, self.reason, self.fix)


class SignatureRejected(ConnectorError):
    """A webhook failed verification; ``reason`` says which check (never the secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownConnector(ConnectorError):
    """No installed connector has this name."""
