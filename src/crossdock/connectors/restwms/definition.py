"""Compile a REST WMS definition once: expressions, templates, mappings, error rules.

:func:`compile_definition` checks every expression of a :class:`RestWmsSettings` with the
flow expression engine (:mod:`crossdock.flows.expressions`, :mod:`crossdock.flows.mapping`)
and raises one pydantic ``ValidationError`` listing every problem, each located at its
field (``endpoints.create_order.path``, ``mappings.order.lines.$map.sku`` ...).

The variables each kind of text may use:

=========================================  ==============================================
where                                      variables
=========================================  ==============================================
write ``path``/``params``, ``body``         ``record`` (canonical record), ``reference``,
mappings used as a body, lookup path        ``xref`` (the WMS id, if known),
                                           ``idempotency_key``
``external_id`` of a write                 ``response``, ``headers``, ``status``,
                                           ``record``, ``reference``, ``xref``
lookup ``items``/``match``/``external_id``  ``response``, ``item`` + the write's variables
mappings to canonical records, ``data``     ``data`` (the WMS object), ``body`` (the whole
                                           answer or delivery), ``headers``
``record_key``/``version``/``event_id``     those, plus ``record`` (the canonical record)
webhook ``event_type``/``event_id``         ``body``, ``headers``
error rule ``when``/``reason``/``fix``      ``status``, ``response``
``cursor.position``                        ``data``, ``body``, ``headers``
=========================================  ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from crossdock.flows.expressions import (
    Expression,
    ExpressionProblem,
    compile_expression,
    to_json_value,
)
from crossdock.flows.failures import MappingFailure, Site, evaluate
from crossdock.flows.mapping import MappingNode, compile_mapping, render_mapping
from crossdock.project.yamlsrc import ConfigIssue, Loc, SourceMap, did_you_mean, one_of
from crossdock.sdk.events import canonical_model_for

if TYPE_CHECKING:
    from crossdock.connectors.restwms.settings import (
        ErrorRule,
        ListEndpoint,
        LookupConfig,
        RestWmsSettings,
        WriteEndpoint,
    )

__all__ = [
    "INBOUND_NAMES",
    "REQUEST_NAMES",
    "SITE",
    "CompiledList",
    "CompiledLookup",
    "CompiledRule",
    "CompiledWebhook",
    "CompiledWebhookEvent",
    "CompiledWrite",
    "Definition",
    "Template",
    "compile_definition",
    "drop_nulls",
]

REQUEST_NAMES = ("record", "reference", "xref", "idempotency_key")
RESPONSE_NAMES = ("response", "headers", "status", *REQUEST_NAMES)
LOOKUP_NAMES = ("response", "item", *REQUEST_NAMES)
INBOUND_NAMES = ("data", "body", "headers")
KEY_NAMES = (*INBOUND_NAMES, "record")
WEBHOOK_NAMES = ("body", "headers")
RULE_NAMES = ("status", "response")
WRITE_ACTIONS = ("create_order", "update_order", "cancel_order")

SITE = Site("rest-wms", "the connection's definition")
"""Where expressions live, for MappingFailure messages."""


@dataclass
class _Issue:
    loc: Loc
    message: str
    expected: str | None = None
    offset: int | None = None


class _Issues:
    def __init__(self) -> None:
        self.items: list[_Issue] = []

    def add(
        self, loc: Loc, message: str, expected: str | None = None, offset: int | None = None
    ) -> None:
        self.items.append(_Issue(loc, message, expected, offset))

    def expression(
        self, source: Any, loc: Loc, names: tuple[str, ...], *, optional: bool = False
    ) -> Expression | None:
        if source is None and optional:
            return None
        if not isinstance(source, str):
            self.add(loc, "needs an expression (text)", "an expression such as data.id")
            return None
        try:
            return compile_expression(source, names)
        except ExpressionProblem as p:
            self.add(loc, p.message, p.expected, p.offset)
            return None

    def template(self, source: str, loc: Loc, names: tuple[str, ...]) -> Template:
        try:
            return Template(source, names)
        except ExpressionProblem as p:
            self.add(loc, p.message, p.expected, p.offset)
            return Template("", names)


class _LocSourceMap(SourceMap):
    """A source map with no positions that remembers each issue's location tuple."""

    def __init__(self) -> None:
        super().__init__("definition")
        self.locs: list[tuple[Loc, int | None]] = []

    def issue(
        self,
        path: Loc,
        message: str,
        expected: str | None = None,
        *,
        on_key: bool = False,
        offset: int | None = None,
    ) -> ConfigIssue:
        self.locs.append((tuple(path), offset))
        return super().issue(path, message, expected, on_key=on_key, offset=offset)


# --- templates -------------------------------------------------------------------------

_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


class Template:
    """Text with ``{expression}`` placeholders (``{{``/``}}`` for literal braces)."""

    def __init__(self, source: str, names: tuple[str, ...]) -> None:
        self.source = source
        parts: list[str | Expression] = []
        pos = 0
        for m in _TEMPLATE_TOKEN.finditer(source):
            parts.append(source[pos : m.start()])
            token = m.group(0)
            if token in ("{{", "}}"):
                parts.append(token[0])
            else:
                inner = m.group(1)
                try:
                    parts.append(compile_expression(inner.strip(), names))
                except ExpressionProblem as p:
                    lead = len(inner) - len(inner.lstrip())
                    raise ExpressionProblem(
                        f"in placeholder {token}: {p.message}",
                        m.start() + 1 + lead + p.offset,
                        p.expected,
                    ) from None
            pos = m.end()
        rest = source[pos:]
        if "{" in rest or "}" in rest:
            at = pos + max(rest.find("{"), rest.find("}"))
            raise ExpressionProblem(
                "an unmatched brace", at, "{expression}, or {{ and }} for literal braces"
            )
        parts.append(rest)
        self.parts = tuple(p for p in parts if p != "")

    @property
    def names(self) -> set[str]:
        """The plain variables its placeholders read (``{xref}`` -> ``xref``)."""
        return {p.source for p in self.parts if isinstance(p, Expression)}

    def render(self, ctx: Mapping[str, Any], field: str, *, quote: bool = False) -> str:
        """The text for ``ctx``; an empty placeholder raises :class:`MappingFailure`."""
        from urllib.parse import quote as urlquote

        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = to_json_value(evaluate(part, ctx, field=field, line=0, site=SITE))
            if value is None or value == "" or isinstance(value, dict | list):
                shown = "empty" if value is None or value == "" else "not a single value"
                raise MappingFailure(
                    "mapping",
                    f"'{field}' needs {{{part.source}}}, which is {shown}",
                    f"Check the record, or change '{field}' in the connection's definition.",
                    field,
                )
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            out.append(urlquote(text, safe="") if quote else text)
        return "".join(out)


def drop_nulls(value: Any) -> Any:
    """``value`` without ``None`` members in its objects (a field mapped to null is left
    out, so the canonical model's default applies)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# --- compiled parts --------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledLookup:
    """A compiled :class:`LookupConfig`."""

    method: str
    path: Template
    params: dict[str, Template | Any]
    items: Expression | None
    match: Expression | None
    external_id: Expression


@dataclass(frozen=True)
class CompiledWrite:
    """A compiled :class:`WriteEndpoint`."""

    name: str
    method: str
    path: Template
    params: dict[str, Template | Any]
    body: MappingNode | None
    body_name: str
    idempotency_header: str | None
    external_id: Expression | None
    lookup: CompiledLookup | None
    check_first: bool
    when_exists: str | None


@dataclass(frozen=True)
class CompiledList:
    """A compiled :class:`ListEndpoint`."""

    path: str
    params: dict[str, Any]
    items: Expression
    cursor_param: str | None
    position: Expression | None
    mapping: MappingNode
    mapping_name: str
    record_key: Expression
    version: Expression | None


@dataclass(frozen=True)
class CompiledRule:
    """A compiled :class:`ErrorRule`."""

    statuses: tuple[int, ...]
    when: Expression | None
    category: str
    reason: Template
    fix: Template


@dataclass(frozen=True)
class CompiledWebhookEvent:
    """A compiled :class:`WebhookEvent`."""

    emit: str
    data: Expression
    mapping: MappingNode
    mapping_name: str
    record_key: Expression
    version: Expression | None
    event_id: Expression | None


@dataclass(frozen=True)
class CompiledWebhook:
    """A compiled :class:`WebhookConfig`."""

    event_type: Expression
    event_id: Expression | None
    events: dict[str, CompiledWebhookEvent]


@dataclass
class Definition:
    """Everything of a definition that runs, compiled once."""

    writes: dict[str, CompiledWrite] = field(default_factory=dict)
    lists: dict[str, CompiledList] = field(default_factory=dict)
    rules: list[CompiledRule] = field(default_factory=list)
    webhook: CompiledWebhook | None = None
    check: tuple[str, Template, dict[str, Any]] | None = None


# --- compiling -------------------------------------------------------------------------


class _Compiler:
    def __init__(self, settings: RestWmsSettings) -> None:
        self.s = settings
        self.issues = _Issues()
        self.mapping_cache: dict[tuple[str, tuple[str, ...]], MappingNode] = {}

    def mapping(self, data: Any, loc: Loc, names: tuple[str, ...]) -> MappingNode:
        smap = _LocSourceMap()
        found: list[ConfigIssue] = []
        node = compile_mapping(data, smap, names, (), found, loc)
        for issue, (path, offset) in zip(found, smap.locs, strict=False):
            self.issues.add(path, issue.message, issue.expected, offset)
        return node

    def named_mapping(self, name: str, loc: Loc, names: tuple[str, ...]) -> MappingNode | None:
        if name not in self.s.mappings:
            self.issues.add(
                loc,
                f"unknown mapping '{name}'" + did_you_mean(name, self.s.mappings),
                one_of(self.s.mappings) + " (declare it under 'mappings:')",
            )
            return None
        key = (name, names)
        if key not in self.mapping_cache:
            self.mapping_cache[key] = self.mapping(self.s.mappings[name], ("mappings", name), names)
        return self.mapping_cache[key]

    def params(
        self, params: Mapping[str, Any], loc: Loc, names: tuple[str, ...]
    ) -> dict[str, Template | Any]:
        out: dict[str, Template | Any] = {}
        for k, v in params.items():
            out[k] = self.issues.template(v, (*loc, k), names) if isinstance(v, str) else v
        return out

    def lookup(self, cfg: LookupConfig, loc: Loc) -> CompiledLookup | None:
        i = self.issues
        path = i.template(cfg.path, (*loc, "path"), REQUEST_NAMES)
        params = self.params(cfg.params, (*loc, "params"), REQUEST_NAMES)
        items = i.expression(cfg.items, (*loc, "items"), LOOKUP_NAMES, optional=True)
        match = i.expression(cfg.match, (*loc, "match"), LOOKUP_NAMES, optional=True)
        ext = i.expression(cfg.external_id, (*loc, "external_id"), LOOKUP_NAMES)
        if ext is None:
            return None
        return CompiledLookup(cfg.method, path, params, items, match, ext)

    def write(self, name: str, cfg: WriteEndpoint) -> CompiledWrite:
        loc: Loc = ("endpoints", name)
        i = self.issues
        path = i.template(cfg.path, (*loc, "path"), REQUEST_NAMES)
        params = self.params(cfg.params, (*loc, "params"), REQUEST_NAMES)
        body: MappingNode | None = None
        body_name = ""
        if isinstance(cfg.body, str):
            body_name = f"mappings.{cfg.body}"
            body = self.named_mapping(cfg.body, (*loc, "body"), REQUEST_NAMES)
        elif isinstance(cfg.body, dict):
            body_name = f"endpoints.{name}.body"
            body = self.mapping(cfg.body, (*loc, "body"), REQUEST_NAMES)
        ext = i.expression(cfg.external_id, (*loc, "external_id"), RESPONSE_NAMES, optional=True)
        lookup = self.lookup(cfg.lookup, (*loc, "lookup")) if cfg.lookup else None
        if cfg.check_first and cfg.lookup is None:
            i.add((*loc, "check_first"), "check_first needs a 'lookup'", "a lookup: {path: ...}")
        if cfg.when_exists is not None:
            others = [n for n in WRITE_ACTIONS if n != name and getattr(self.s.endpoints, n)]
            if cfg.when_exists not in others:
                i.add(
                    (*loc, "when_exists"),
                    f"'{cfg.when_exists}' is not another write endpoint of this definition"
                    + did_you_mean(cfg.when_exists, others),
                    one_of(others),
                )
        return CompiledWrite(
            name=name,
            method=cfg.method,
            path=path,
            params=params,
            body=body,
            body_name=body_name,
            idempotency_header=cfg.idempotency_header,
            external_id=ext,
            lookup=lookup,
            check_first=cfg.check_first,
            when_exists=cfg.when_exists,
        )

    def list_(self, name: str, cfg: ListEndpoint) -> CompiledList | None:
        loc: Loc = ("endpoints", name)
        i = self.issues
        items = i.expression(cfg.items, (*loc, "items"), ("response", "headers"))
        position = None
        if cfg.cursor is not None:
            position = i.expression(
                cfg.cursor.position, (*loc, "cursor", "position"), INBOUND_NAMES
            )
        mapping = self.named_mapping(cfg.mapping, (*loc, "mapping"), INBOUND_NAMES)
        key = i.expression(cfg.record_key, (*loc, "record_key"), KEY_NAMES)
        version = i.expression(cfg.version, (*loc, "version"), KEY_NAMES, optional=True)
        if items is None or mapping is None or key is None:
            return None
        return CompiledList(
            path=cfg.path,
            params=dict(cfg.params),
            items=items,
            cursor_param=cfg.cursor.param if cfg.cursor else None,
            position=position,
            mapping=mapping,
            mapping_name=cfg.mapping,
            record_key=key,
            version=version,
        )

    def rule(self, n: int, rule: ErrorRule) -> CompiledRule:
        loc: Loc = ("errors", n)
        i = self.issues
        return CompiledRule(
            statuses=rule.statuses(),
            when=i.expression(rule.when, (*loc, "when"), RULE_NAMES, optional=True),
            category=rule.category,
            reason=i.template(rule.reason, (*loc, "reason"), RULE_NAMES),
            fix=i.template(rule.fix, (*loc, "fix"), RULE_NAMES),
        )

    def webhook(self) -> CompiledWebhook | None:
        cfg = self.s.webhook
        if cfg is None:
            return None
        i = self.issues
        loc: Loc = ("webhook",)
        event_type = i.expression(cfg.event_type, (*loc, "event_type"), WEBHOOK_NAMES)
        event_id = i.expression(cfg.event_id, (*loc, "event_id"), WEBHOOK_NAMES, optional=True)
        events: dict[str, CompiledWebhookEvent] = {}
        for name, ev in cfg.events.items():
            eloc: Loc = (*loc, "events", name)
            if canonical_model_for(ev.emit) is None:
                i.add(
                    (*eloc, "emit"),
                    f"'{ev.emit}' is not an event type with a canonical record",
                    "e.g. shipment.created, inventory.updated, order.updated",
                )
            data = i.expression(ev.data, (*eloc, "data"), WEBHOOK_NAMES)
            mapping = self.named_mapping(ev.mapping, (*eloc, "mapping"), INBOUND_NAMES)
            key = i.expression(ev.record_key, (*eloc, "record_key"), KEY_NAMES)
            version = i.expression(ev.version, (*eloc, "version"), KEY_NAMES, optional=True)
            eid = i.expression(ev.event_id, (*eloc, "event_id"), KEY_NAMES, optional=True)
            if data is not None and mapping is not None and key is not None:
                events[name] = CompiledWebhookEvent(
                    ev.emit, data, mapping, ev.mapping, key, version, eid
                )
        if event_type is None:
            return None
        return CompiledWebhook(event_type, event_id, events)

    def run(self) -> Definition:
        d = Definition()
        eps = self.s.endpoints
        for name in WRITE_ACTIONS:
            cfg = getattr(eps, name)
            if cfg is not None:
                d.writes[name] = self.write(name, cfg)
        for name in ("get_shipments", "get_stock"):
            lcfg = getattr(eps, name)
            if lcfg is not None:
                compiled = self.list_(name, lcfg)
                if compiled is not None:
                    d.lists[name] = compiled
        d.rules = [self.rule(n, r) for n, r in enumerate(self.s.errors)]
        d.webhook = self.webhook()
        if eps.check is not None:
            params = dict(eps.check.params)
            path = self.issues.template(eps.check.path, ("endpoints", "check", "path"), ())
            d.check = (eps.check.method, path, params)
        # Mappings nobody uses are still checked (syntax, filters), with every name allowed.
        used = {name for name, _ in self.mapping_cache}
        for name, data in self.s.mappings.items():
            if name not in used:
                self.mapping(data, ("mappings", name), (*REQUEST_NAMES, *INBOUND_NAMES))
        return d


def compile_definition(settings: RestWmsSettings) -> Definition:
    """Compile ``settings``; raise a ``ValidationError`` listing every problem."""
    c = _Compiler(settings)
    d = c.run()
    if c.issues.items:
        errors: list[InitErrorDetails] = []
        for issue in c.issues.items:
            ctx: dict[str, Any] = {
                "message": issue.message,
                "expected": issue.expected or "",
                "hint": f" (expected {issue.expected})" if issue.expected else "",
            }
            if issue.offset is not None:
                ctx["offset"] = issue.offset
            errors.append(
                {
                    "type": PydanticCustomError("definition", "{message}{hint}", ctx),
                    "loc": issue.loc,
                    "input": None,
                }
            )
        raise ValidationError.from_exception_data("RestWmsSettings", errors)
    return d


def render(node: MappingNode, ctx: Mapping[str, Any]) -> Any:
    """Render a compiled mapping (raises :class:`MappingFailure`)."""
    return render_mapping(node, ctx, SITE)
