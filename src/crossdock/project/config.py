"""``crossdock.yaml``: the project's workspaces, connections and their settings.

A project is a folder::

    crossdock.yaml      workspaces -> connections (inbound webhook settings, outbound operations)
    flows/*.yaml        flows (see crossdock.flows)

:func:`load_project` reads both and raises one :class:`ConfigError` listing every problem
with file, line and column. Models are frozen Pydantic models that forbid unknown keys;
secrets are ``SecretStr`` and never appear in ``repr``, errors or :meth:`public_dict`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from crossdock.flows.expressions import ExpressionProblem, compile_expression
from crossdock.flows.spec import Duration
from crossdock.ingest.signatures import SignatureConfig
from crossdock.project.yamlsrc import (
    ConfigError,
    ConfigIssue,
    Loc,
    did_you_mean,
    display_path,
    issues_from_validation,
    load_yaml,
    one_of,
)

if TYPE_CHECKING:
    from crossdock.flows.flow import Flow

    FlowList = list[Flow]
else:
    FlowList = list[Any]

__all__ = [
    "AlertRule",
    "AlertsConfig",
    "AuthConfig",
    "BasicAuth",
    "BearerAuth",
    "ConnectionConfig",
    "CredentialsConfig",
    "EmailChannel",
    "HeaderAuth",
    "InboundConfig",
    "LookupCall",
    "NoAuth",
    "OperationConfig",
    "OutboundConfig",
    "Project",
    "RateLimitConfig",
    "SmtpConfig",
    "WebhookChannel",
    "Workspace",
    "connection_config_from_dict",
    "display_path",
    "load_project",
    "merge_secrets",
    "parse_project_text",
    "split_secrets",
]

PROJECT_FILE = "crossdock.yaml"
REDACTED = "********"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ID_RULE = (
    "lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters"
)


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise PydanticCustomError(
            "id_format",
            "{message}",
            {"message": f"{value!r} is not a valid name", "expected": _ID_RULE},
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]


def _expression(names: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        try:
            compile_expression(value, names)
        except ExpressionProblem as p:
            raise PydanticCustomError(
                "expression",
                "{message}",
                {"message": p.message, "expected": p.expected or "", "offset": p.offset},
            ) from None
        return value

    return AfterValidator(check)


#: An expression over an inbound webhook (``body``, ``headers``).
InboundExpression = Annotated[str, _expression(("body", "headers"))]
#: An expression over a destination's answer (``body``, ``headers``, ``status``).
ResponseExpression = Annotated[str, _expression(("body", "headers", "status"))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class InboundConfig(_Model):
    """How a connection receives webhooks at ``POST /hooks/{workspace}/{connection}``:
    the signature check and the expressions reading type, record key, version and id."""

    signature: SignatureConfig
    event_type: InboundExpression
    record_key: InboundExpression
    version: InboundExpression | None = None
    event_id: InboundExpression | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)


class BearerAuth(_Model):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"] = "bearer"
    token: SecretStr


class BasicAuth(_Model):
    """HTTP basic authentication."""

    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr


class HeaderAuth(_Model):
    """A secret sent in a named header (e.g. ``X-Api-Key``)."""

    type: Literal["header"] = "header"
    name: str = Field(min_length=1)
    value: SecretStr


class NoAuth(_Model):
    """No authentication."""

    type: Literal["none"] = "none"


#: The outbound authentication, picked by its ``type``.
AuthConfig = Annotated[BearerAuth | BasicAuth | HeaderAuth | NoAuth, Field(discriminator="type")]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _check_path(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError(
            "path_format",
            "{message}",
            {"message": f"{value!r} is not a path", "expected": "a path starting with '/'"},
        )
    return value


UrlPath = Annotated[str, AfterValidator(_check_path)]


class LookupCall(_Model):
    """How to verify an uncertain outcome: 200 means it happened, 404 that it did not."""

    method: Annotated[Literal["GET", "HEAD"], BeforeValidator(_upper)] = "GET"
    path: UrlPath


class OperationConfig(_Model):
    """One outbound operation = one HTTP request.

    ``path`` may contain ``{placeholders}`` filled from a flow's ``action.path_params``
    and ``{xref}`` / ``{idempotency_key}``.
    """

    method: Annotated[HttpMethod, BeforeValidator(_upper)]
    path: UrlPath
    idempotency_header: str | None = "Idempotency-Key"
    external_id: ResponseExpression | None = None
    lookup: LookupCall | None = None
    when_exists: str | None = None


class OutboundConfig(_Model):
    """How a connection is written to: base URL, auth, headers and its operations."""

    base_url: str
    auth: AuthConfig = Field(default_factory=NoAuth)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0)
    operations: dict[str, OperationConfig] = Field(min_length=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise PydanticCustomError(
                "url_format",
                "{message}",
                {
                    "message": f"{value!r} is not an http(s) URL",
                    "expected": "e.g. https://api.example.com",
                },
            )
        return value


class RateLimitConfig(_Model):
    """One rate limit per credential: ``per_second`` steady rate, ``burst`` bucket size
    (default: one second's worth)."""

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _default_burst(cls, data: Any) -> Any:
        if isinstance(data, dict) and "burst" not in data:
            ps = data.get("per_second")
            burst = 1
            if isinstance(ps, int | float) and not isinstance(ps, bool) and ps > 0:
                burst = max(1, math.ceil(ps))
            return {**data, "burst": burst}
        return data


#: An expression over one polled item (``item``).
ItemExpression = Annotated[str, _expression(("item",))]


class PollConfig(_Model):
    """A polling source: ``GET url?{cursor_param}={cursor}`` every ``interval_seconds``.

    Each item of the answer becomes an event (the item is the event's ``body``). The
    cursor is stored durably and advances only in the transaction that stores the items'
    events; each poll re-reads ``overlap_seconds`` before the cursor (late writes at the
    vendor) and the duplicates this brings are absorbed by event dedup.
    """

    url: str
    auth: AuthConfig | None = None  # default: the outbound auth
    headers: dict[str, str] = Field(default_factory=dict)
    interval_seconds: float = Field(default=30.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    params: dict[str, str] = Field(default_factory=dict)
    cursor_param: str = "updated_since"
    initial_cursor: str = "1970-01-01T00:00:00Z"
    overlap_seconds: float = Field(default=60.0, ge=0)
    max_pages: int = Field(default=100, ge=1)
    items: ResponseExpression
    next_page: ResponseExpression | None = None
    cursor: ItemExpression
    event_type: InboundExpression
    record_key: InboundExpression
    version: InboundExpression | None = None
    event_id: InboundExpression | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise PydanticCustomError(
                "url_format",
                "{message}",
                {
                    "message": f"{value!r} is not an http(s) URL",
                    "expected": "e.g. https://api.example.com/orders",
                },
            )
        return value


class StreamOptions(_Model):
    """A connector stream polled by the hub (backfill, or a vendor without webhooks)."""

    interval_seconds: float | None = Field(default=None, gt=0)


def _known_connector(value: str) -> str:
    if value == "http":
        return value
    from crossdock.sdk.registry import available

    names = available()
    if value not in names:
        choices = ["http", *sorted(names)]
        raise PydanticCustomError(
            "connector",
            "{message}",
            {
                "message": f"unknown connector '{value}'" + did_you_mean(value, choices),
                "expected": one_of(choices),
            },
        )
    return value


class CredentialsConfig(_Model):
    """When a connection's credentials expire and how often they should be rotated.

    ``expires_on`` is the date the vendor stops accepting them (an API token's end date);
    ``rotate_every`` is the rotation policy (``90d``), counted from the last time the
    secret values changed (``connections.secrets_rotated_at``).
    """

    expires_on: date | None = None
    rotate_every: Duration | None = Field(default=None, gt=0)


class ConnectionConfig(_Model):
    """A connector configured with settings and credentials.

    ``connector: http`` is the generic HTTP connector, configured by ``inbound``,
    ``poll`` and ``outbound``. Any other connector (``shopify``, ``rest-wms`` ...) is
    configured by its own typed ``settings``; ``streams`` names the connector streams
    the hub polls.
    """

    name: Id
    connector: Annotated[str, AfterValidator(_known_connector)]
    inbound: InboundConfig | None = None
    poll: PollConfig | None = None
    outbound: OutboundConfig | None = None
    settings: dict[str, Any] | None = None
    streams: dict[str, StreamOptions] = Field(default_factory=dict)
    rate_limit: RateLimitConfig | None = None
    concurrency: int = Field(default=16, ge=1)
    credentials: CredentialsConfig | None = None

    _settings_model: Any = PrivateAttr(default=None)

    @property
    def is_http(self) -> bool:
        """Whether this is the generic HTTP connector."""
        return self.connector == "http"

    def connector_settings(self) -> Any:
        """The connector's validated settings model (raises ``ValidationError``)."""
        if self.is_http:
            return None
        if self._settings_model is None:
            from crossdock.sdk.registry import get_connector

            model = get_connector(self.connector).settings_model
            self._settings_model = model.model_validate(self.settings or {})
        return self._settings_model

    def _safe_settings(self) -> Any:
        try:
            return self.connector_settings()
        except Exception:
            return None

    def secret_values(self) -> list[str]:
        """Every secret string of this connection (for redaction), non-empty ones only."""
        return [v for _, v in _secrets_of(self, ()) if v]

    def public_dict(self) -> dict[str, Any]:
        """The settings with every secret replaced by ``"********"`` (safe to show)."""
        out: dict[str, Any] = _public(self.model_dump(mode="python"))
        model = self._safe_settings()
        if model is not None:
            out["settings"] = _public(model.model_dump(mode="python"))
        return out


# --- alerts --------------------------------------------------------------------------


def _http_url_check(value: str, example: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise PydanticCustomError(
            "url_format",
            "{message}",
            {"message": f"{value!r} is not an http(s) URL", "expected": f"e.g. {example}"},
        )
    return value


def _webhook_secret(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    body = raw.removeprefix("whsec_").rstrip("=")
    try:
        ok = bool(body) and bool(base64.b64decode(body + "=" * (-len(body) % 4), validate=True))
    except (binascii.Error, ValueError):
        ok = False
    if not ok:  # never echo the value
        raise PydanticCustomError(
            "webhook_secret",
            "{message}",
            {
                "message": "the webhook secret is not a Standard Webhooks secret",
                "expected": "'whsec_' followed by base64, e.g. made by: crossdock alerts "
                "new-secret",
            },
        )
    return value


class SmtpConfig(_Model):
    """The SMTP server an e-mail channel sends through.

    ``starttls`` upgrades a plain connection (port 587); ``ssl`` connects with TLS from
    the start (port 465). ``username``/``password`` log in when given.
    """

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)


class WebhookChannel(_Model):
    """Alerts POSTed as Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``) to ``url``, signed with ``secret`` (``whsec_...``)."""

    type: Literal["webhook"] = "webhook"
    url: str
    secret: Annotated[SecretStr, AfterValidator(_webhook_secret)]
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url_check(value, "https://ops.example.com/hooks/crossdock")


class EmailChannel(_Model):
    """Alerts sent as plain-text e-mail over SMTP."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, hide_input_in_errors=True, populate_by_name=True
    )

    type: Literal["email"] = "email"
    to: list[str] = Field(min_length=1)
    sender: str = Field(alias="from", min_length=3)
    smtp: SmtpConfig
    subject_prefix: str = "[Crossdock]"

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for addr in value:
            if "@" not in addr:
                raise PydanticCustomError(
                    "email_address",
                    "{message}",
                    {"message": f"{addr!r} is not an e-mail address", "expected": "name@domain"},
                )
        return value


#: A notification channel, picked by its ``type``.
AlertChannel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]

AlertKind = Literal["error_rate", "backlog", "lag", "credential_expiry", "api_sunset"]

#: What each kind of rule needs and may name.
_RULE_NEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "error_rate": ("above", ("connection",)),
    "backlog": ("above", ("flow",)),
    "lag": ("above", ("flow",)),
    "credential_expiry": ("within", ("connection",)),
    "api_sunset": ("within", ("connection",)),
}


def _rule_issue(loc: tuple[str | int, ...], message: str, expected: str | None) -> Any:
    from pydantic_core import InitErrorDetails

    return InitErrorDetails(
        type=PydanticCustomError(
            "alert_rule", "{message}", {"message": message, "expected": expected or ""}
        ),
        loc=loc,
        input=None,
    )


class AlertRule(_Model):
    """One alert rule: a condition checked every evaluation, per subject.

    - ``error_rate``: share of failed calls to a connection in ``window`` is ``above``
      (0.05 = 5 %), once there were at least ``min_calls`` calls;
    - ``backlog``: deliveries waiting in a flow ``above`` a count;
    - ``lag``: the oldest waiting delivery of a flow is older than ``above`` (a duration);
    - ``credential_expiry``: a connection's credentials expire, or are due for rotation,
      ``within`` a duration (``14d``);
    - ``api_sunset``: a connector's vendor API version reaches its sunset ``within``.

    Without ``connection``/``flow`` a rule applies to each one. While firing, the
    notification is repeated every ``repeat`` (``0``: never).
    """

    name: Annotated[str, Field(min_length=1, max_length=200)]
    when: AlertKind
    connection: Id | None = None
    flow: str | None = None
    above: Duration | None = None
    within: Duration | None = None
    window: Duration = Field(default=600.0, gt=0)
    min_calls: int = Field(default=20, ge=1)
    repeat: Duration = 3600.0
    notify: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _fits_kind(self) -> AlertRule:
        need, may_name = _RULE_NEEDS[self.when]
        errors = []
        if getattr(self, need) is None:
            errors.append(
                _rule_issue(
                    ("when",),
                    f"a '{self.when}' rule needs '{need}'",
                    "e.g. above: 0.05 (error_rate), 500 (backlog), 5m (lag)"
                    if need == "above"
                    else "a duration such as 14d",
                )
            )
        other = "within" if need == "above" else "above"
        if getattr(self, other) is not None:
            errors.append(
                _rule_issue((other,), f"'{other}' does not apply to a '{self.when}' rule", need)
            )
        for key in ("connection", "flow"):
            if getattr(self, key) is not None and key not in may_name:
                errors.append(
                    _rule_issue(
                        (key,),
                        f"a '{self.when}' rule cannot be limited to a {key}",
                        f"{may_name[0]}: NAME, or nothing (every {may_name[0]})",
                    )
                )
        if self.when == "error_rate" and self.above is not None and self.above > 1:
            errors.append(
                _rule_issue(
                    ("above",),
                    f"an error rate is a share between 0 and 1, not {self.above:g}",
                    "e.g. 0.05 for 5 %",
                )
            )
        if errors:
            raise ValidationError.from_exception_data("AlertRule", errors)
        return self


class AlertsConfig(_Model):
    """A workspace's alerting: evaluation interval, channels and rules."""

    every_seconds: float = Field(default=30.0, gt=0)
    console_url: str | None = None
    channels: dict[Id, AlertChannel] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=list)

    @field_validator("console_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url_check(value, "https://hub.example.com")

    def secret_values(self) -> list[str]:
        """Every secret string of the channels (for redaction), non-empty ones only."""
        return [v for _, v in _secrets_of(self, ()) if v]

    def split_secrets(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(the configuration as data without secrets, the secrets by JSON pointer), so
        the store can keep the secrets encrypted apart (see :meth:`from_stored`)."""
        data: dict[str, Any] = _plain(self.model_dump(mode="python", by_alias=True))
        secrets: dict[str, str] = {}
        for path, value in _secrets_of(self, ()):
            secrets[_pointer(path)] = value
            parent: Any = data
            for p in path[:-1]:
                parent = parent.get(p) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
        return data, secrets

    @classmethod
    def from_stored(cls, config: Mapping[str, Any], secrets: Mapping[str, str]) -> AlertsConfig:
        """The inverse of :meth:`split_secrets` (raises ``ValidationError``)."""
        return cls.model_validate(merge_secrets(config, secrets))


class Workspace(_Model):
    """A tenant (one merchant) and its connections."""

    id: Id
    name: str
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    alerts: AlertsConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" not in data and "id" in data:
            return {**data, "name": data["id"]}
        return data


class _ProjectFile(_Model):
    """The document ``crossdock.yaml`` as written."""

    version: Literal[1] = 1
    database_url: str | None = None
    flows_dir: str = "flows"
    workspaces: dict[str, Workspace]


class Project(_Model):
    """A loaded project: where it is, its workspaces and (after :func:`load_project`)
    its flows."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    root: Path
    file: Path
    database_url: str | None = None
    flows_dir: Path
    workspaces: dict[str, Workspace]
    flows: FlowList = Field(default_factory=list)

    def workspace(self, workspace_id: str) -> Workspace | None:
        """The workspace ``workspace_id``, if any."""
        return self.workspaces.get(workspace_id)


# --- secrets -------------------------------------------------------------------------


def _secrets_of(obj: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    if isinstance(obj, ConnectionConfig) and not obj.is_http:
        model = obj._safe_settings()
        if model is not None:
            return _secrets_of(model, (*path, "settings"))
        return out
    if isinstance(obj, SecretStr):
        out.append((path, obj.get_secret_value()))
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            out.extend(_secrets_of(getattr(obj, name), (*path, name)))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_secrets_of(v, (*path, str(k))))
    return out


def _public(obj: Any) -> Any:
    if isinstance(obj, SecretStr):
        return REDACTED
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_public(v) for v in obj]
    return obj


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def _unpointer(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def split_secrets(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a connection's settings into (settings without secrets, secrets by JSON
    pointer), so the store can keep the secrets encrypted apart. Raises ConfigError."""
    name = str(data.get("name") or "connection")
    cfg = connection_config_from_dict(dict(data), name)
    settings = copy.deepcopy(_plain(dict(data)))
    secrets: dict[str, str] = {}
    for path, value in _secrets_of(cfg, ()):
        secrets[_pointer(path)] = value
        parent: Any = settings
        for p in path[:-1]:
            parent = parent.get(p) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return settings, secrets


def merge_secrets(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The inverse of :func:`split_secrets`: put each secret back at its pointer."""
    out: dict[str, Any] = copy.deepcopy(dict(settings))
    for pointer, value in secrets.items():
        parts = _unpointer(pointer)
        if not parts:
            continue
        cur = out
        for p in parts[:-1]:
            nxt = cur.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[p] = nxt
            cur = nxt
        cur[parts[-1]] = value
    return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, SecretStr):
        return obj.get_secret_value()
    if isinstance(obj, BaseModel):
        return _plain(obj.model_dump(mode="python"))
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


# --- checks across fields ------------------------------------------------------------

Problem = tuple[Loc, str, str | None]


def _connector_problems(cfg: ConnectionConfig) -> list[Problem]:
    """A named connector's settings checked against its typed settings model."""
    out: list[Problem] = []
    for key in ("inbound", "poll", "outbound"):
        if getattr(cfg, key) is not None:
            out.append(
                (
                    (key,),
                    f"connector '{cfg.connector}' is configured by 'settings', not '{key}'",
                    "settings: {...} (see the connector's documentation)",
                )
            )
    try:
        cfg.connector_settings()
    except ValidationError as exc:
        for err in exc.errors():
            loc = ("settings", *(str(p) for p in err["loc"]))
            msg = err["msg"]
            if err["type"] == "missing":
                msg = f"setting '{err['loc'][-1]}' is required by connector '{cfg.connector}'"
            elif err["type"] == "extra_forbidden":
                msg = f"unknown setting '{err['loc'][-1]}' for connector '{cfg.connector}'"
            out.append((loc, msg, None))
        return out
    except Exception as exc:
        out.append((("connector",), f"connector '{cfg.connector}' cannot be loaded: {exc}", None))
        return out
    if cfg.streams:
        from crossdock.runtime.connectors import describe

        known = describe(cfg).streams
        for stream in cfg.streams:
            if stream not in known:
                out.append(
                    (
                        ("streams", stream),
                        f"connector '{cfg.connector}' has no stream '{stream}'"
                        + did_you_mean(stream, known),
                        one_of(known) if known else "no streams",
                    )
                )
    return out


def _connection_problems(cfg: ConnectionConfig) -> list[Problem]:
    """What a connection's fields cannot say alone (relative locations)."""
    out: list[Problem] = []
    if not cfg.is_http:
        return _connector_problems(cfg)
    if cfg.settings is not None or cfg.streams:
        out.append(
            (
                ("settings",) if cfg.settings is not None else ("streams",),
                "the 'http' connector is configured by 'inbound', 'poll' and 'outbound'",
                "inbound / poll / outbound (or pick a named connector such as shopify)",
            )
        )
    if cfg.inbound is None and cfg.outbound is None and cfg.poll is None:
        out.append(
            (
                (),
                f"connection '{cfg.name}' has none of 'inbound', 'poll' or 'outbound' settings",
                "'inbound' (to receive webhooks), 'poll' (to read a list on a schedule) "
                "and/or 'outbound' (to be written to)",
            )
        )
    if cfg.outbound is not None:
        ops = cfg.outbound.operations
        for op_name, op in ops.items():
            if op.when_exists is not None and op.when_exists not in ops:
                out.append(
                    (
                        ("outbound", "operations", op_name, "when_exists"),
                        f"unknown operation '{op.when_exists}'" + did_you_mean(op.when_exists, ops),
                        one_of(ops),
                    )
                )
    return out


def _alerts_problems(raw_ws: Any) -> list[Problem]:
    """A workspace's alert rules checked against its channels and connections (relative
    to the workspace; reported even when other parts of the file have problems)."""
    out: list[Problem] = []
    alerts = raw_ws.get("alerts") if isinstance(raw_ws, dict) else None
    if not isinstance(alerts, dict) or not isinstance(alerts.get("rules"), list):
        return out
    raw_channels = alerts.get("channels")
    channels = [str(c) for c in raw_channels] if isinstance(raw_channels, dict) else []
    raw_conns = raw_ws.get("connections")
    conns = [str(c) for c in raw_conns] if isinstance(raw_conns, dict) else []
    seen: set[str] = set()
    for i, rule in enumerate(alerts["rules"]):
        if not isinstance(rule, dict):
            continue
        loc: Loc = ("alerts", "rules", i)
        name = rule.get("name")
        if isinstance(name, str):
            if name in seen:
                out.append(((*loc, "name"), f"duplicate rule name '{name}'", "each name once"))
            seen.add(name)
        notify = rule.get("notify")
        for j, channel in enumerate(notify if isinstance(notify, list) else []):
            if isinstance(channel, str) and channel not in channels:
                out.append(
                    (
                        (*loc, "notify", j),
                        f"unknown channel '{channel}'" + did_you_mean(channel, channels),
                        one_of(channels) + " (under alerts.channels)",
                    )
                )
        target = rule.get("connection")
        if isinstance(target, str) and target not in conns:
            out.append(
                (
                    (*loc, "connection"),
                    f"unknown connection '{target}'" + did_you_mean(target, conns),
                    one_of(conns),
                )
            )
    return out


def connection_config_from_dict(data: Mapping[str, Any], name: str) -> ConnectionConfig:
    """Validate a connection's settings given as data (REST API, database).

    Problems are reported with JSON pointers (``/outbound/auth/token``) instead of lines.
    """
    source = f"connection '{name}'"
    payload = {**_plain(dict(data)), "name": name}
    try:
        cfg = ConnectionConfig.model_validate(payload)
    except ValidationError as exc:
        raise ConfigError(issues_from_validation(exc, ConnectionConfig, file=source)) from None
    problems = _connection_problems(cfg)
    if problems:
        raise ConfigError(
            ConfigIssue(source, 0, 0, msg, exp, _pointer(tuple(str(s) for s in loc)) or "/")
            for loc, msg, exp in problems
        )
    return cfg


# --- the project file ----------------------------------------------------------------


def _resolve_database_url(url: str | None, root: Path) -> str | None:
    if not url:
        return None
    m = re.match(r"^(sqlite(?:\+\w+)?:///)(.*)$", url)
    if m is None:
        return url
    rest = m.group(2)
    path_part, sep, query = rest.partition("?")
    if not path_part or path_part == ":memory:" or path_part.startswith("/"):
        return url
    return m.group(1) + str((root / path_part).resolve()) + sep + query


def _with_ids(data: Any) -> Any:
    """Inject each workspace's ``id`` and each connection's ``name`` from their keys."""
    if not isinstance(data, dict) or not isinstance(data.get("workspaces"), dict):
        return data
    spaces: dict[str, Any] = {}
    for ws_id, ws in data["workspaces"].items():
        if isinstance(ws, dict):
            ws = {**ws, "id": ws_id}
            if isinstance(ws.get("connections"), dict):
                ws["connections"] = {
                    name: ({**c, "name": name} if isinstance(c, dict) else c)
                    for name, c in ws["connections"].items()
                }
        elif ws is None:
            ws = {"id": ws_id}
        spaces[ws_id] = ws
    return {**data, "workspaces": spaces}


def parse_project_text(
    text: str,
    source: str,
    root: Path,
    env: Mapping[str, str] | None = None,
    *,
    file: Path | None = None,
) -> Project:
    """Validate the text of a ``crossdock.yaml`` (without loading flows).

    ``source`` names the file in messages; ``root`` is the project folder; ``env`` is used
    for ``${VAR}`` substitution (default: ``os.environ``). Raises ConfigError.
    """
    env = os.environ if env is None else env
    data, smap, issues = load_yaml(text, source, env)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [smap.issue((), "the project file must be a mapping", "keys such as workspaces:")]
        )
    model: _ProjectFile | None = None
    try:
        model = _ProjectFile.model_validate(_with_ids(data))
    except ValidationError as exc:
        issues.extend(smap.issues_from_validation(exc, _ProjectFile))
    # Checks across a connection's fields, for every connection that is valid on its own
    # (so they are reported even when another part of the file has problems).
    for ws_id, raw_ws in _with_ids(data).get("workspaces", {}).items():
        raw_conns = raw_ws.get("connections") if isinstance(raw_ws, dict) else None
        if not isinstance(raw_conns, dict):
            continue
        for cname, raw in raw_conns.items():
            try:
                cfg = ConnectionConfig.model_validate(raw)
            except ValidationError:
                continue
            prefix: Loc = ("workspaces", ws_id, "connections", cname)
            for loc, msg, exp in _connection_problems(cfg):
                issues.append(smap.issue((*prefix, *loc), msg, exp, on_key=not loc))
    for ws_id, raw_ws in _with_ids(data).get("workspaces", {}).items():
        for loc, msg, exp in _alerts_problems(raw_ws):
            issues.append(smap.issue(("workspaces", ws_id, *loc), msg, exp))
    if issues or model is None:
        raise ConfigError(issues)
    root = root.resolve()
    return Project(
        root=root,
        file=file if file is not None else root / PROJECT_FILE,
        database_url=_resolve_database_url(model.database_url, root),
        flows_dir=root / model.flows_dir,
        workspaces=model.workspaces,
    )


def load_project(path: Path, env: Mapping[str, str] | None = None) -> Project:
    """Load a project folder (or its ``crossdock.yaml``) and all its flows.

    Raises ``FileNotFoundError`` when there is no project file, and one ConfigError
    listing every problem in the project file or, if that is valid, in the flows.
    """
    from crossdock.flows.loader import load_flows

    path = Path(path)
    file = path / PROJECT_FILE if path.is_dir() else path
    if path.is_dir() and not file.exists() and (path / "crossdock.yml").exists():
        file = path / "crossdock.yml"
    if not file.is_file():
        raise FileNotFoundError(f"no project file at {file}")
    root = file.parent.resolve()
    text = file.read_text(encoding="utf-8")
    project = parse_project_text(text, display_path(file), root, env, file=file.resolve())
    flows = load_flows(project.flows_dir, project, env)
    return project.model_copy(update={"flows": flows})
