"""The Connector SDK: how every connector is written, ours and third parties'.

- :mod:`~crossdock.sdk.connector` — the :class:`Connector` declaration.
- :mod:`~crossdock.sdk.settings` — typed settings, secrets as secrets.
- :mod:`~crossdock.sdk.client` — the vendor client on an injected ``httpx.AsyncClient``;
  one place classifies answers; every exchange recorded for the audit trail.
- :mod:`~crossdock.sdk.auth` — API key, bearer, Basic, OAuth2 (refresh before expiry), HMAC.
- :mod:`~crossdock.sdk.ratelimits` — leaky bucket, cost-based, per-endpoint.
- :mod:`~crossdock.sdk.pagination` — Link header, cursor, page, offset, next-token.
- :mod:`~crossdock.sdk.streams` — polling streams with a durable cursor.
- :mod:`~crossdock.sdk.webhooks` — verify, handshake, parse.
- :mod:`~crossdock.sdk.mapping` — declarative mappers and lookup tables.
- :mod:`~crossdock.sdk.actions` — writes with idempotency keys and verifying lookups.
- :mod:`~crossdock.sdk.conformance` — the suite every connector passes.
- :mod:`~crossdock.sdk.registry` — built-in and entry-point connectors.
"""

from crossdock.sdk.actions import Action, ActionContext, ActionResult, run_action
from crossdock.sdk.client import Exchange, Recorder, VendorClient, VendorResponse, recording
from crossdock.sdk.connector import Connector
from crossdock.sdk.errors import (
    ActionRefused,
    ConnectorError,
    SignatureRejected,
    UnknownConnector,
    VendorError,
)
from crossdock.sdk.events import IncomingEvent, canonical_model_for
from crossdock.sdk.mapping import LookupTable, Mapper, mapping
from crossdock.sdk.settings import Settings, secret_values
from crossdock.sdk.streams import Cursor, Stream
from crossdock.sdk.webhooks import WebhookHandler, WebhookReply

__all__ = [
    "Action",
    "ActionContext",
    "ActionRefused",
    "ActionResult",
    "Connector",
    "ConnectorError",
    "Cursor",
    "Exchange",
    "IncomingEvent",
    "LookupTable",
    "Mapper",
    "Recorder",
    "Settings",
    "SignatureRejected",
    "Stream",
    "UnknownConnector",
    "VendorClient",
    "VendorError",
    "VendorResponse",
    "WebhookHandler",
    "WebhookReply",
    "canonical_model_for",
    "mapping",
    "recording",
    "run_action",
    "secret_values",
]
