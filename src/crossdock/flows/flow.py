"""A flow: on event E from connection A, (filter), map, do action X on connection B.

:func:`parse_flow` reads one flow file, checks it against the project (connections,
operations, lookup tables, expressions) and reports *every* problem at once with file,
line and column. A :class:`Flow` holds its expressions compiled once; :meth:`Flow.accepts`
and :meth:`Flow.render` only evaluate them.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from crossdock.flows.expressions import (
    CONTEXT_NAMES,
    LOOKUPS_VAR,
    Expression,
    ExpressionProblem,
    compile_expression,
    to_json_value,
)
from crossdock.flows.failures import MappingFailure, Site, evaluate
from crossdock.flows.lookups import load_lookup_tables
from crossdock.flows.mapping import MappingNode, compile_mapping, render_mapping
from crossdock.flows.spec import _FLOW_NAME, Action, FlowFile, FlowOptions, Trigger
from crossdock.project.yamlsrc import (
    ConfigError,
    ConfigIssue,
    SourceMap,
    did_you_mean,
    load_yaml,
    one_of,
)

if TYPE_CHECKING:
    from crossdock.project.config import ConnectionConfig, Project

__all__ = ["Flow", "RenderedAction", "parse_flow"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: Placeholders every operation path may use without a path parameter.
BUILTIN_PLACEHOLDERS = ("xref", "idempotency_key")


@dataclass(frozen=True)
class RenderedAction:
    """What a flow sends for one event: the request body and the path parameters."""

    body: Any
    path_params: dict[str, str]


@dataclass(frozen=True, eq=False)
class Flow:
    """One loaded flow with its expressions compiled (build it with :func:`parse_flow`)."""

    name: str
    workspace: str
    file: Path
    line: int
    trigger: Trigger
    filter_source: str | None
    mapping_source: Any
    action: Action
    options: FlowOptions
    emit: str | None
    source_text: str
    description: str = ""
    #: The lookup tables, read once: table -> key -> value.
    lookups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    #: The action connection's settings when the flow was checked against a project.
    connection: ConnectionConfig | None = field(default=None, repr=False)
    #: (line, column) of parts of the file, e.g. ``"trigger.connection"``.
    locations: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    _filter: Expression | None = field(default=None, repr=False)
    _mapping: MappingNode | None = field(default=None, repr=False)
    _path_params: tuple[tuple[str, Expression, int], ...] = field(default=(), repr=False)
    _site: Site = field(default_factory=lambda: Site("", ""), repr=False)
    _events_any: bool = field(default=False, repr=False)
    _events_exact: frozenset[str] = field(default=frozenset(), repr=False)
    _events_glob: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, connection: str, event_type: str) -> bool:
        """Whether an event of ``event_type`` from ``connection`` triggers this flow."""
        if connection != self.trigger.connection:
            return False
        if self._events_any or event_type in self._events_exact:
            return True
        return self._events_glob is not None and self._events_glob.match(event_type) is not None

    def _context(self, ctx: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.lookups:
            return ctx
        full = dict(ctx)
        full[LOOKUPS_VAR] = self.lookups
        return full

    def accepts(self, ctx: Mapping[str, Any]) -> bool:
        """Run the filter (True when there is none); raises MappingFailure."""
        if self._filter is None:
            return True
        line = self.locations.get("filter", (self.line, 1))[0]
        value = evaluate(
            self._filter, self._context(ctx), field="filter", line=line, site=self._site
        )
        try:
            return bool(value)
        except Exception as exc:
            raise MappingFailure(
                "mapping",
                f"the filter gave a value that is neither true nor false: {exc}",
                f"Change the filter in {self._site.file} line {line}.",
                "filter",
            ) from None

    def render(self, ctx: Mapping[str, Any]) -> RenderedAction:
        """The request body and path parameters for one event; raises MappingFailure."""
        full = self._context(ctx)
        body = render_mapping(self._mapping, full, self._site) if self._mapping else None
        params: dict[str, str] = {}
        for name, expr, line in self._path_params:
            label = f"path_params.{name}"
            value = to_json_value(evaluate(expr, full, field=label, line=line, site=self._site))
            if value is None or value == "" or isinstance(value, dict | list):
                shown = "empty" if value is None or value == "" else "not a single value"
                raise MappingFailure(
                    "mapping",
                    f"path parameter '{name}' is {shown} (from '{expr.source}')",
                    f"Check the event, or change action.path_params.{name} in "
                    f"{self._site.file} line {line}; then retry the delivery.",
                    label,
                )
            params[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return RenderedAction(body, params)


def _events_matcher(events: tuple[str, ...]) -> tuple[bool, frozenset[str], re.Pattern[str] | None]:
    if "*" in events:
        return True, frozenset(), None
    exact = frozenset(e for e in events if not any(c in e for c in "*?["))
    globs = [fnmatch.translate(e) for e in events if e not in exact]
    return False, exact, re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None


def _str(data: Any, *keys: str) -> str | None:
    cur = data
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur if isinstance(cur, str) else None


def _workspace(
    data: dict[str, Any], project: Project | None, smap: SourceMap, issues: list[ConfigIssue]
) -> str:
    given = _str(data, "workspace")
    if project is None:
        return given or ""
    if given is not None:
        if given not in project.workspaces:
            issues.append(
                smap.issue(
                    ("workspace",),
                    f"unknown workspace '{given}'" + did_you_mean(given, project.workspaces),
                    one_of(project.workspaces),
                )
            )
        return given
    if len(project.workspaces) == 1:
        return next(iter(project.workspaces))
    issues.append(
        smap.issue(
            (),
            "missing key 'workspace' (the project has "
            + ("several workspaces)" if project.workspaces else "no workspaces)"),
            one_of(project.workspaces),
        )
    )
    return ""


def _check_connections(
    data: dict[str, Any],
    conns: Mapping[str, ConnectionConfig],
    ws: str,
    smap: SourceMap,
    issues: list[ConfigIssue],
) -> ConnectionConfig | None:
    """Trigger and action against the workspace's connections; the action's config."""
    trig = _str(data, "trigger", "connection")
    if trig is not None and trig not in conns:
        issues.append(
            smap.issue(
                ("trigger", "connection"),
                f"unknown connection '{trig}' in workspace '{ws}'" + did_you_mean(trig, conns),
                one_of(n for n, c in conns.items() if c.inbound or c.poll or not c.is_http),
            )
        )
    act = _str(data, "action", "connection")
    if act is None:
        return None
    cfg = conns.get(act)
    writable = [n for n, c in conns.items() if c.outbound is not None or not c.is_http]
    if cfg is None:
        issues.append(
            smap.issue(
                ("action", "connection"),
                f"unknown connection '{act}' in workspace '{ws}'" + did_you_mean(act, conns),
                one_of(writable),
            )
        )
        return None
    if not cfg.is_http:
        _check_connector_action(data, cfg, act, smap, issues)
        return cfg
    if cfg.outbound is None:
        issues.append(
            smap.issue(
                ("action", "connection"),
                f"connection '{act}' cannot be written to: it has no 'outbound' settings",
                one_of(writable),
            )
        )
        return cfg
    ops = cfg.outbound.operations
    op_name = _str(data, "action", "operation")
    if op_name is None:
        return cfg
    op = ops.get(op_name)
    if op is None:
        issues.append(
            smap.issue(
                ("action", "operation"),
                f"unknown operation '{op_name}' on connection '{act}'" + did_you_mean(op_name, ops),
                one_of(ops),
            )
        )
        return cfg
    raw_params = data["action"].get("path_params")
    params = set(raw_params) if isinstance(raw_params, dict) else set()
    used: set[str] = set()
    for name in [op_name, *([op.when_exists] if op.when_exists else [])]:
        path = ops[name].path
        found = set(_PLACEHOLDER.findall(path))
        used |= found
        for missing in sorted(found - params - set(BUILTIN_PLACEHOLDERS)):
            where = ("action", "path_params") if isinstance(raw_params, dict) else ("action",)
            issues.append(
                smap.issue(
                    where,
                    f"operation '{name}' of connection '{act}' has the path '{path}', "
                    f"which needs '{{{missing}}}'",
                    f"path_params: {{{missing}: <expression>}} under action",
                    on_key=True,
                )
            )
    for extra in sorted(params - used):
        issues.append(
            smap.issue(
                ("action", "path_params", extra),
                f"path parameter '{extra}' is not used by the path of operation '{op_name}'",
                one_of(used - set(BUILTIN_PLACEHOLDERS)) if used else "no path parameters",
                on_key=True,
            )
        )
    return cfg


def _check_connector_action(
    data: dict[str, Any],
    cfg: ConnectionConfig,
    act: str,
    smap: SourceMap,
    issues: list[ConfigIssue],
) -> None:
    """The action of a flow writing to a named connector: one of its actions."""
    from crossdock.runtime.connectors import describe

    try:
        actions = describe(cfg).actions
    except Exception:
        return  # the connection's own problems are reported with the project file
    op_name = _str(data, "action", "operation")
    if op_name is not None and op_name not in actions:
        issues.append(
            smap.issue(
                ("action", "operation"),
                f"connector '{cfg.connector}' (connection '{act}') has no action '{op_name}'"
                + did_you_mean(op_name, actions),
                one_of(actions) if actions else "none: this connector cannot be written to",
            )
        )
    raw_params = data["action"].get("path_params")
    if raw_params:
        issues.append(
            smap.issue(
                ("action", "path_params"),
                f"path_params only apply to the http connector; '{act}' is a "
                f"{cfg.connector} connection",
                "no path_params (the connector builds its own requests)",
                on_key=True,
            )
        )


def _compile_at(
    source: Any,
    at: tuple[str, ...],
    smap: SourceMap,
    tables: tuple[str, ...],
    issues: list[ConfigIssue],
) -> Expression | None:
    if not isinstance(source, str):
        return None
    try:
        return compile_expression(source, CONTEXT_NAMES, tables)
    except ExpressionProblem as p:
        issues.append(smap.issue(at, p.message, p.expected, offset=p.offset))
        return None


def parse_flow(
    text: str,
    source: str,
    project: Project | None = None,
    *,
    env: Mapping[str, str] | None = None,
    file: Path | None = None,
) -> Flow:
    """Read and check one flow file; raise ConfigError listing every problem.

    ``source`` names the file in messages; ``file`` is its real path (default
    ``Path(source)``; lookup files are relative to it). With ``project``, connections,
    operations and the workspace are checked. ``env`` feeds ``${VAR}`` (default:
    ``os.environ``).
    """
    path = file if file is not None else Path(source)
    data, smap, issues = load_yaml(text, source, os.environ if env is None else env)
    if not isinstance(data, dict):
        raise ConfigError(
            [
                *issues,
                smap.issue(
                    (),
                    "a flow file must be a mapping",
                    "keys such as name:, trigger:, mapping:, action:",
                ),
            ]
        )
    spec: FlowFile | None = None
    try:
        spec = FlowFile.model_validate(data)
    except ValidationError as exc:
        issues.extend(smap.issues_from_validation(exc, FlowFile))

    name = _str(data, "name")
    if name is None:
        name = Path(source).stem
        if "name" not in data and not re.match(_FLOW_NAME, name):
            issues.append(
                smap.issue(
                    (),
                    f"the file name gives the flow the name '{name}', which is not a valid name",
                    "a 'name:' key with letters, digits, '-', '_' or '.'",
                )
            )
    workspace = _workspace(data, project, smap, issues)
    conns = None
    if project is not None and workspace in project.workspaces:
        conns = project.workspaces[workspace].connections
    target = _check_connections(data, conns, workspace, smap, issues) if conns is not None else None

    tables = load_lookup_tables(data.get("lookups"), smap, path.parent, issues)
    declared = tuple(data["lookups"]) if isinstance(data.get("lookups"), dict) else ()
    flt = _compile_at(data.get("filter"), ("filter",), smap, declared, issues)
    mapping: MappingNode | None = None
    if data.get("mapping") is not None:
        mapping = compile_mapping(data["mapping"], smap, CONTEXT_NAMES, declared, issues)
    params: list[tuple[str, Expression, int]] = []
    raw_params = (
        data.get("action", {}).get("path_params") if isinstance(data.get("action"), dict) else None
    )
    if isinstance(raw_params, dict):
        for pname, psrc in raw_params.items():
            at = ("action", "path_params", pname)
            expr = _compile_at(psrc, at, smap, declared, issues)
            if expr is not None:
                params.append((pname, expr, smap.value_position(at)[0]))

    if issues or spec is None:
        raise ConfigError(issues)
    any_, exact, glob = _events_matcher(spec.trigger.events)
    locations = {
        key: smap.value_position(loc)
        for key, loc in {
            "name": ("name",),
            "filter": ("filter",),
            "trigger.connection": ("trigger", "connection"),
            "action.connection": ("action", "connection"),
            "action.operation": ("action", "operation"),
        }.items()
        if loc in smap.values
    }
    line = smap.key_position(("name",))[0] if "name" in data else 1
    return Flow(
        name=name,
        workspace=workspace,
        file=path,
        line=line,
        trigger=spec.trigger,
        filter_source=spec.filter,
        mapping_source=spec.mapping,
        action=spec.action,
        options=spec.options,
        emit=spec.emit,
        source_text=text,
        description=spec.description,
        lookups=tables.tables,
        connection=target,
        locations=locations,
        _filter=flt,
        _mapping=mapping,
        _path_params=tuple(params),
        _site=Site(name, source, tables.where),
        _events_any=any_,
        _events_exact=exact,
        _events_glob=glob,
    )
