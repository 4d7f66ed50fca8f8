"""A flow's ``mapping``: the request body as a tree whose leaves are expressions.

::

    mapping:
      order_number: body.name          # a string is an expression
      currency: "'EUR'"                # a quoted Jinja string literal
      channel: {$const: shop}          # a literal value (any YAML)
      quantity: 1                      # numbers, booleans and null are literals too
      lines:
        $each: body.line_items         # one output item per input item
        $as: line                      # the item's name inside $map (default: item)
        $map: {sku: line.sku, quantity: line.quantity}
      $$ref: body.ref                  # a key that really starts with '$' is written '$$'

The tree is compiled once (:func:`compile_mapping`) into nodes whose ``render`` only
evaluates already-compiled expressions.
"""

from __future__ import annotations

import copy
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossdock.flows.expressions import (
    Expression,
    ExpressionProblem,
    FilterError,
    compile_expression,
    to_json_value,
)
from crossdock.flows.failures import MappingFailure, Site, evaluate
from crossdock.project.yamlsrc import ConfigIssue, Loc, SourceMap, did_you_mean, format_path

__all__ = ["MappingNode", "compile_mapping", "render_mapping"]

_DIRECTIVES = ("$const", "$each", "$as", "$map")
_SIMPLE_PATH = re.compile(r"^\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[\d+\])*)\s*$")
_PATH_PART = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")

Origins = Mapping[str, str]


class MappingNode:
    """A compiled part of the mapping tree."""

    def render(self, ctx: Mapping[str, Any], path: Loc, origins: Origins, site: Site) -> Any:
        """The JSON-ready value of this part for one event."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Const(MappingNode):
    value: Any

    def render(self, ctx: Mapping[str, Any], path: Loc, origins: Origins, site: Site) -> Any:
        # A fresh copy each time: the caller may change the body it gets.
        return copy.deepcopy(self.value) if isinstance(self.value, dict | list) else self.value


@dataclass(frozen=True)
class _Expr(MappingNode):
    expr: Expression
    line: int

    def render(self, ctx: Mapping[str, Any], path: Loc, origins: Origins, site: Site) -> Any:
        field = format_path(path) or "body"
        value = evaluate(self.expr, ctx, field=field, line=self.line, site=site, origins=origins)
        return _jsonable(value, field, self.expr, self.line, site)


@dataclass(frozen=True)
class _Object(MappingNode):
    items: tuple[tuple[str, MappingNode], ...]

    def render(self, ctx: Mapping[str, Any], path: Loc, origins: Origins, site: Site) -> Any:
        return {k: node.render(ctx, (*path, k), origins, site) for k, node in self.items}


@dataclass(frozen=True)
class _List(MappingNode):
    items: tuple[MappingNode, ...]

    def render(self, ctx: Mapping[str, Any], path: Loc, origins: Origins, site: Site) -> Any:
        return [node.render(ctx, (*path, i), origins, site) for i, node in enumerate(self.items)]


@dataclass(frozen=True)
class _Each(MappingNode):
    source: Expression
    var: str
    template: MappingNode
    line: int
    origin: tuple[str, str] | None  # (root variable, path text) when source is a plain path

    def render(self, ctx: Mapping[str, Any], path: Loc, origins: Origins, site: Site) -> Any:
        field = format_path(path) or "body"
        items = evaluate(self.source, ctx, field=field, line=self.line, site=site, origins=origins)
        if items is None:
            return []
        if not isinstance(items, list | tuple):
            raise MappingFailure(
                "mapping",
                f"'{field}' needs a list from '{self.source.source}', but the event has "
                f"{_kind(items)} there",
                f"Check the event, or change '$each' for '{field}' in {site.file} line "
                f"{self.line}; then retry the delivery.",
                field,
            )
        base = None
        if self.origin is not None:
            root, rest = self.origin
            if root == "body":
                base = rest.lstrip(".")
            elif root in origins:
                base = origins[root] + rest
        out = []
        for i, item in enumerate(items):
            inner = dict(ctx)
            inner[self.var] = item
            sub = {**origins, self.var: f"{base}[{i}]"} if base is not None else origins
            out.append(self.template.render(inner, (*path, i), sub, site))
        return out


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _jsonable(value: Any, field: str, expr: Expression, line: int, site: Site) -> Any:
    try:
        return to_json_value(value)
    except FilterError as exc:
        raise MappingFailure(
            "mapping",
            f"'{field}' could not be computed: {exc} (expression: {expr.source})",
            f"Change the expression in {site.file} line {line}; then retry the delivery.",
            field,
        ) from None
    except Exception as exc:  # an undefined value deep inside a list or object
        raise MappingFailure(
            "mapping",
            f"'{field}' could not be computed: {exc} (expression: {expr.source})",
            f"Check the event, or change the expression in {site.file} line {line}; then "
            "retry the delivery.",
            field,
        ) from None


def render_mapping(node: MappingNode, ctx: Mapping[str, Any], site: Site) -> Any:
    """The request body for one event (raises MappingFailure)."""
    return node.render(ctx, (), {}, site)


def compile_mapping(
    data: Any,
    smap: SourceMap,
    names: tuple[str, ...],
    tables: tuple[str, ...],
    issues: list[ConfigIssue],
    path: Loc = ("mapping",),
) -> MappingNode:
    """Compile the mapping tree once; problems are appended to ``issues``."""
    if isinstance(data, str):
        line, _ = smap.value_position(path)
        try:
            return _Expr(compile_expression(data, names, tables), line)
        except ExpressionProblem as p:
            issues.append(smap.issue(path, p.message, p.expected, offset=p.offset))
            return _Const(None)
    if isinstance(data, list):
        return _List(
            tuple(
                compile_mapping(v, smap, names, tables, issues, (*path, i))
                for i, v in enumerate(data)
            )
        )
    if isinstance(data, dict):
        directives = [k for k in data if k.startswith("$") and not k.startswith("$$")]
        if directives:
            return _directive(data, directives, smap, names, tables, issues, path)
        return _Object(
            tuple(
                (
                    k[1:] if k.startswith("$$") else k,
                    compile_mapping(v, smap, names, tables, issues, (*path, k)),
                )
                for k, v in data.items()
            )
        )
    return _Const(data)


def _directive(
    data: dict[str, Any],
    directives: list[str],
    smap: SourceMap,
    names: tuple[str, ...],
    tables: tuple[str, ...],
    issues: list[ConfigIssue],
    path: Loc,
) -> MappingNode:
    expected = "$const: value, or $each: list with $as: name and $map: ..."
    for k in directives:
        if k not in _DIRECTIVES:
            issues.append(
                smap.issue(
                    (*path, k),
                    f"unknown directive '{k}'" + did_you_mean(k, _DIRECTIVES),
                    expected,
                    on_key=True,
                )
            )
    plain = [k for k in data if k not in directives]
    if plain:
        issues.append(
            smap.issue(
                (*path, plain[0]),
                f"'{plain[0]}' cannot sit next to '{directives[0]}'",
                f"{expected} (write '$${directives[0][1:]}' for a key starting with '$')",
                on_key=True,
            )
        )
    if "$const" in data:
        others = [k for k in directives if k != "$const" and k in _DIRECTIVES]
        if others:
            issues.append(
                smap.issue(
                    (*path, others[0]),
                    f"'{others[0]}' cannot be combined with '$const'",
                    expected,
                    on_key=True,
                )
            )
        return _Const(data["$const"])
    if "$each" not in data:
        if any(k in _DIRECTIVES for k in directives):
            issues.append(smap.issue(path, "'$as' and '$map' need '$each'", expected, on_key=True))
        return _Const(None)
    var = data.get("$as", "item")
    ok_var = True
    if not isinstance(var, str) or not var.isidentifier() or keyword.iskeyword(var):
        issues.append(smap.issue((*path, "$as"), f"{var!r} is not a name", "a word like line"))
        ok_var = False
    elif var in names:
        issues.append(
            smap.issue(
                (*path, "$as"),
                f"'{var}' is already a variable here",
                "another name (not " + ", ".join(names) + ")",
            )
        )
        ok_var = False
    if "$map" not in data:
        issues.append(
            smap.issue(path, "'$each' needs '$map' (what each item becomes)", expected, on_key=True)
        )
    source = data["$each"]
    each_path = (*path, "$each")
    line, _ = smap.value_position(each_path)
    compiled: Expression | None = None
    if not isinstance(source, str):
        issues.append(
            smap.issue(each_path, "'$each' needs an expression giving a list", "e.g. body.lines")
        )
    else:
        try:
            compiled = compile_expression(source, names, tables)
        except ExpressionProblem as p:
            issues.append(smap.issue(each_path, p.message, p.expected, offset=p.offset))
    inner_names = (*names, var) if ok_var else names
    template = compile_mapping(data.get("$map"), smap, inner_names, tables, issues, (*path, "$map"))
    if compiled is None or not ok_var:
        return _Const(None)
    origin = None
    if isinstance(source, str):
        m = _SIMPLE_PATH.match(source)
        if m:
            origin = (m.group(1), m.group(2))
    return _Each(compiled, str(var), template, line, origin)
