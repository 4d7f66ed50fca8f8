"""The declarative REST WMS definition: the connection's ``settings:`` in ``crossdock.yaml``.

Everything a 3PL needs to connect its in-house WMS without Python: base URL, auth, the
endpoints (create / update / cancel an order, list shipments and stock), field mappings
(flow mapping trees: ``$each``/``$as``/``$map``/``$const``), pagination, error rules and
the webhook's signature. The whole definition is compiled when the settings are
validated, so a bad expression is a validation error naming its field (and, through the
YAML loader, its file, line and column).

Three kinds of text appear in a definition:

- an *expression* (``external_id: response.id``) — a flow expression, Jinja2 in a
  sandbox, with the flow filters (``money``, ``decimal``, ``iso8601``, ``lookup`` ...);
- a *template* (``path: /api/v1/orders/{xref}``, error ``reason``) — text with
  ``{expression}`` placeholders (``{{`` and ``}}`` for literal braces);
- a *mapping* (``mappings:``) — a tree whose string leaves are expressions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from crossdock.ingest.signatures import SignatureConfig
from crossdock.sdk.settings import Settings

__all__ = [
    "ApiKeyAuthConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "BearerAuthConfig",
    "CursorConfig",
    "Endpoints",
    "ErrorRule",
    "ListEndpoint",
    "LookupConfig",
    "NoAuthConfig",
    "PaginationConfig",
    "RateLimitConfig",
    "RequestConfig",
    "RestWmsSettings",
    "WebhookConfig",
    "WebhookEvent",
    "WriteEndpoint",
]

_PART = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Scalar = str | int | float | bool


class _Part(BaseModel):
    model_config = _PART


# --- auth ------------------------------------------------------------------------------


class NoAuthConfig(_Part):
    """No credentials (a WMS on a private network)."""

    type: Literal["none"] = "none"


class ApiKeyAuthConfig(_Part):
    """A key in a header (``X-Api-Key: ...``)."""

    type: Literal["api_key"] = "api_key"
    header: str = Field(default="X-Api-Key", min_length=1)
    key: SecretStr


class BearerAuthConfig(_Part):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"] = "bearer"
    token: SecretStr


class BasicAuthConfig(_Part):
    """HTTP Basic."""

    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr


AuthConfig = Annotated[
    NoAuthConfig | ApiKeyAuthConfig | BearerAuthConfig | BasicAuthConfig,
    Field(discriminator="type"),
]


class RateLimitConfig(_Part):
    """The WMS's published limit: ``per_second`` with bursts of ``burst`` calls."""

    per_second: float = Field(gt=0)
    burst: int | None = Field(default=None, ge=1)


# --- pagination (mapped onto crossdock.sdk.pagination) ---------------------------------


class NoPagination(_Part):
    """One request answers the whole list."""

    type: Literal["none"] = "none"


class LinkPagination(_Part):
    """Follow ``Link: <...>; rel="next"`` (LinkHeaderPaginator)."""

    type: Literal["link"] = "link"
    rel: str = "next"
    keep_params: list[str] = Field(default_factory=list)


class CursorPagination(_Part):
    """A cursor in the body at the dotted ``cursor_path``, sent back as ``param``."""

    type: Literal["cursor"] = "cursor"
    cursor_path: str
    param: str
    has_more_path: str | None = None


class PagePagination(_Part):
    """``page`` / ``per_page``; stops on a short page or at the total-pages header."""

    type: Literal["page"] = "page"
    page_param: str = "page"
    size_param: str = "per_page"
    size: int = Field(default=100, ge=1)
    total_pages_header: str | None = "X-Total-Pages"
    start: int = 1


class OffsetPagination(_Part):
    """``offset`` / ``limit``; stops on a short page or at ``total_path``."""

    type: Literal["offset"] = "offset"
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, ge=1)
    total_path: str | None = None


class NextTokenPagination(_Part):
    """A token in the body at ``token_path`` sent back as ``param``."""

    type: Literal["next_token"] = "next_token"
    token_path: str
    param: str
    keep_params: list[str] = Field(default_factory=list)


PaginationConfig = Annotated[
    NoPagination
    | LinkPagination
    | CursorPagination
    | PagePagination
    | OffsetPagination
    | NextTokenPagination,
    Field(discriminator="type"),
]


# --- endpoints -------------------------------------------------------------------------


class RequestConfig(_Part):
    """A plain request (``endpoints.check``): method, path template, query params."""

    method: Method = "GET"
    path: str = Field(min_length=1)
    params: dict[str, Scalar] = Field(default_factory=dict)


class LookupConfig(_Part):
    """How to ask the WMS whether a write happened (and to find an order's WMS id).

    ``path``/``params`` are templates; ``items`` an expression giving the list of
    candidates from ``response`` (absent: the answer itself is the one candidate);
    ``match`` an expression over ``item`` that must be true (absent: any candidate);
    ``external_id`` an expression over ``item``. A 404 or no candidate means "not there".
    """

    method: Method = "GET"
    path: str = Field(min_length=1)
    params: dict[str, Scalar] = Field(default_factory=dict)
    items: str | None = None
    match: str | None = None
    external_id: str = "item.id"


class WriteEndpoint(_Part):
    """One write (an action): create, update or cancel an order."""

    method: Method = "POST"
    path: str = Field(min_length=1)
    body: str | dict[str, Any] | None = None
    """The name of a mapping under ``mappings:`` or an inline mapping; none: no body."""
    params: dict[str, Scalar] = Field(default_factory=dict)
    idempotency_header: str | None = None
    external_id: str | None = None
    """Expression reading the WMS id from the answer (``response``, ``headers``)."""
    lookup: LookupConfig | None = None
    check_first: bool = False
    """Run ``lookup`` before writing and skip the write if it finds the record."""
    when_exists: str | None = None
    """The action to use instead when the order already has a WMS id (create -> update)."""


class CursorConfig(_Part):
    """Incremental reads: send the stream position as ``param``; ``position`` is an
    expression over ``data`` giving each item's position (an ISO timestamp)."""

    param: str
    position: str


class ListEndpoint(_Part):
    """A list read by a stream (shipments, stock)."""

    path: str = Field(min_length=1)
    params: dict[str, Scalar] = Field(default_factory=dict)
    items: str = "response"
    """Expression giving the list from ``response`` (e.g. ``response.shipments``)."""
    pagination: PaginationConfig = Field(default_factory=NoPagination)
    cursor: CursorConfig | None = None
    mapping: str
    """The name of the mapping under ``mappings:`` that makes the canonical record."""
    record_key: str
    """Expression: the record's id at the WMS (``data``, ``record``)."""
    version: str | None = None
    """Expression: an orderable version (``data.updated_at``)."""


class Endpoints(_Part):
    """The WMS endpoints the connector uses (each optional)."""

    create_order: WriteEndpoint | None = None
    update_order: WriteEndpoint | None = None
    cancel_order: WriteEndpoint | None = None
    get_shipments: ListEndpoint | None = None
    get_stock: ListEndpoint | None = None
    check: RequestConfig | None = None
    """A cheap authenticated call for ``connections test`` (default: the first list)."""


class ErrorRule(_Part):
    """Turn a WMS error answer into a refusal a person can act on.

    Matches when the status is one of ``status`` (absent: any error status) and the
    ``when`` expression (over ``status`` and ``response``) is true; ``reason`` and
    ``fix`` are templates over the same names.
    """

    status: int | list[int] | None = None
    when: str | None = None
    category: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    fix: str = Field(min_length=1)

    def statuses(self) -> tuple[int, ...]:
        """The statuses this rule applies to (empty: any)."""
        if self.status is None:
            return ()
        return (self.status,) if isinstance(self.status, int) else tuple(self.status)


class WebhookEvent(_Part):
    """One WMS webhook event type: what hub event it becomes and how."""

    emit: str
    """The hub event type (``shipment.created``, ``inventory.updated``)."""
    data: str = "body"
    """Expression giving the WMS object inside the delivery (``body.data``)."""
    mapping: str
    record_key: str
    version: str | None = None
    event_id: str | None = None


class WebhookConfig(_Part):
    """The WMS's webhooks: signature, event type, and each event's mapping."""

    signature: SignatureConfig
    event_type: str
    """Expression over ``body`` and ``headers`` (``headers['x-event-type']``)."""
    event_id: str | None = None
    """Expression: the WMS's event id, for dedup."""
    events: dict[str, WebhookEvent] = Field(default_factory=dict)


# --- the definition --------------------------------------------------------------------


class RestWmsSettings(Settings):
    """A REST WMS, declared (see the module docstring and docs/connectors.md)."""

    base_url: str = Field(min_length=1)
    auth: AuthConfig = Field(default_factory=NoAuthConfig)
    timeout_seconds: float = Field(default=30.0, gt=0)
    rate_limit: RateLimitConfig | None = None
    location: str = "WH1"
    """The warehouse's location code (for messages and stock records)."""
    endpoints: Endpoints = Field(default_factory=Endpoints)
    mappings: dict[str, Any] = Field(default_factory=dict)
    errors: list[ErrorRule] = Field(default_factory=list)
    webhook: WebhookConfig | None = None

    _compiled: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile_definition(self) -> RestWmsSettings:
        from crossdock.connectors.restwms.definition import compile_definition

        self._compiled = compile_definition(self)
        return self

    @property
    def compiled(self) -> Any:
        """The compiled definition (:class:`~.definition.Definition`)."""
        if self._compiled is None:
            from crossdock.connectors.restwms.definition import compile_definition

            self._compiled = compile_definition(self)
        return self._compiled
