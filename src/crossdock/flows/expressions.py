"""Flow expressions: Jinja2 *expressions* in a sandbox, checked and compiled once.

Every filter, mapping value, path parameter and inbound extraction path is an
:class:`Expression`. :func:`compile_expression` parses the text, checks it (syntax, filter
names, variable names — each problem with an offset into the text so the caller can
point at a column), and compiles it with
``ImmutableSandboxedEnvironment(undefined=StrictUndefined).compile_expression`` exactly
once. Calling an expression never compiles anything.

Custom filters (beyond Jinja's built-ins): ``lookup(table, default)``, ``decimal``,
``money(currency)``, strict ``int`` and ``float``, ``iso8601``, ``sha256``; global
``now()``. Filters raise :class:`FilterError` (a plain sentence for an operations person)
and ``lookup`` raises :class:`LookupMiss`.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_context
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from crossdock.project.yamlsrc import did_you_mean, one_of

__all__ = [
    "CONTEXT_NAMES",
    "ENV",
    "LOOKUPS_VAR",
    "Compiled",
    "Expression",
    "ExpressionProblem",
    "FilterError",
    "LookupMiss",
    "compile_expression",
    "to_json_value",
]

#: The variables of a flow's evaluation context (docs/architecture.md).
CONTEXT_NAMES: tuple[str, ...] = ("body", "headers", "event", "xref")
#: Hidden context variable carrying a flow's lookup tables to the ``lookup`` filter.
LOOKUPS_VAR = "__crossdock_lookups__"

Compiled = Callable[[Mapping[str, Any]], Any]


class FilterError(ValueError):
    """A filter could not convert a value; the message is a plain sentence."""


class LookupMiss(LookupError):
    """A value is not in a lookup table (and the filter had no default)."""

    def __init__(self, table: str, key: str, known: bool = True) -> None:
        super().__init__(f"{key!r} is not in lookup table {table!r}")
        self.table = table
        self.key = key
        self.known = known


class ExpressionProblem(ValueError):
    """An expression that cannot be used: ``message``, ``offset`` into the text, and
    ``expected`` (what would be right)."""

    def __init__(self, message: str, offset: int = 0, expected: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.expected = expected


_MISSING: Any = object()

# Minor units per ISO 4217 currency where they are not 2.
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Undefined):
        str(value)  # raises the UndefinedError
    if isinstance(value, bool) or value is None:
        raise FilterError(f"{_show(value)} is not a number")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | float | str):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise FilterError(f"{_show(value)} is not a number") from None
    else:
        raise FilterError(f"{_show(value)} is not a number")
    if not d.is_finite():
        raise FilterError(f"{_show(value)} is not a finite number")
    return d


def _decimal(value: Any) -> Decimal:
    """A ``Decimal`` from a string, int or float (floats via ``str``, so 0.1 stays 0.1)."""
    return _to_decimal(value)


def _money(value: Any, currency: str | None = None) -> str:
    """An amount as a string with the currency's minor units (2 unless e.g. JPY, KWD)."""
    d = _to_decimal(value)
    places = _MINOR_UNITS.get(str(currency).upper(), 2) if currency else 2
    return str(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _int(value: Any) -> int:
    """A whole number; ``'2.5'`` is an error rather than a silent 2."""
    d = _to_decimal(value)
    if d != d.to_integral_value():
        raise FilterError(f"{_show(value)} is not a whole number")
    return int(d)


def _float(value: Any) -> float:
    """A float; anything that is not a number is an error rather than a silent 0.0."""
    return float(_to_decimal(value))


def _iso8601(value: Any) -> str:
    """A date-time normalised to UTC ISO 8601 (``2024-05-01T10:00:00Z``); a time without
    an offset is taken as UTC; numbers are Unix seconds."""
    if isinstance(value, Undefined):
        str(value)
    dt: datetime | None = None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        dt = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            try:
                dt = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                dt = None
    if dt is None:
        raise FilterError(f"{_show(value)} is not a date and time")
    return _iso(dt)


def _iso(dt: datetime) -> str:
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.isoformat().replace("+00:00", "Z")


def _sha256(value: Any) -> str:
    """Hex SHA-256 of a string (other values as canonical JSON)."""
    if isinstance(value, Undefined):
        str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lookup_key(value: Any) -> str:
    if isinstance(value, Undefined):
        str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pass_context
def _lookup(ctx: Context, value: Any, table: str, default: Any = _MISSING) -> Any:
    """``value`` translated by the flow's lookup table ``table``."""
    tables: Mapping[str, Mapping[str, Any]] = ctx.get(LOOKUPS_VAR) or {}
    key = _lookup_key(value)
    rows = tables.get(table)
    if rows is None:
        raise LookupMiss(str(table), key, known=False)
    try:
        return rows[key]
    except KeyError:
        if default is _MISSING:
            raise LookupMiss(str(table), key) from None
        return default


def _now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def _make_env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    env.filters.update(
        {
            "lookup": _lookup,
            "decimal": _decimal,
            "money": _money,
            "int": _int,
            "float": _float,
            "iso8601": _iso8601,
            "sha256": _sha256,
        }
    )
    env.globals["now"] = _now
    return env


#: The one environment every expression is compiled in.
ENV: ImmutableSandboxedEnvironment = _make_env()

_GOT_RE = re.compile(r"(?:unexpected|got) '([^']+)'")
_AT_RE = re.compile(r" at (\d+)$")


def _syntax_offset(source: str, message: str, current: Any) -> int:
    m = _AT_RE.search(message)
    if m:
        return int(m.group(1))
    if "end of template" in message:
        return len(source.rstrip())
    m = _GOT_RE.search(message)
    if m and m.group(1) in source:
        return source.index(m.group(1))
    value = getattr(current, "value", None)
    if isinstance(value, str) and value and value in source:
        return source.rindex(value)
    return 0


def _parse(source: str) -> nodes.Expr:
    if not source.strip():
        raise ExpressionProblem("the expression is empty", 0, "an expression, e.g. body.id")
    parser: Parser | None = None
    try:
        parser = Parser(ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            cur = parser.stream.current
            raise ExpressionProblem(
                f"unexpected {str(cur.value)!r} after the end of the expression",
                _syntax_offset(source, "", cur),
                "one expression (join parts with an operator or a filter: a ~ b, a | f)",
            )
    except TemplateSyntaxError as exc:
        token = parser.stream.current if parser is not None else None
        msg = exc.message or "invalid expression"
        raise ExpressionProblem(
            f"invalid expression: {msg}", _syntax_offset(source, msg, token), "a Jinja2 expression"
        ) from None
    return expr


def _nodes(expr: nodes.Node, kind: Any) -> list[Any]:
    """``expr`` itself (when of ``kind``) and every node below it of ``kind``."""
    found = [expr] if isinstance(expr, kind) else []
    return found + list(expr.find_all(kind))


def _find_word(source: str, word: str, after: str = "") -> int:
    m = re.search((re.escape(after) + r"\s*" if after else r"\b") + re.escape(word), source)
    if m is None:
        return max(source.find(word), 0)
    return m.end() - len(word)


def _check(
    expr: nodes.Expr, source: str, names: Iterable[str] | None, tables: Iterable[str] | None
) -> list[str]:
    for f in _nodes(expr, nodes.Filter):
        if f.name not in ENV.filters:
            raise ExpressionProblem(
                f"unknown filter '{f.name}'" + did_you_mean(f.name, ENV.filters),
                _find_word(source, f.name, "|"),
                one_of(ENV.filters),
            )
    for t in _nodes(expr, nodes.Test):
        if t.name not in ENV.tests:
            raise ExpressionProblem(
                f"unknown test '{t.name}'" + did_you_mean(t.name, ENV.tests),
                _find_word(source, t.name, "is"),
                one_of(ENV.tests),
            )
    if names is not None:
        allowed = set(names) | set(ENV.globals)
        for n in _nodes(expr, nodes.Name):
            if n.ctx == "load" and n.name not in allowed:
                raise ExpressionProblem(
                    f"unknown variable '{n.name}'" + did_you_mean(n.name, allowed),
                    _find_word(source, n.name),
                    one_of(set(names)) + " (or a quoted 'string')",
                )
    used: list[str] = []
    known = set(tables) if tables is not None else None
    for f in _nodes(expr, nodes.Filter):
        if f.name != "lookup":
            continue
        if (
            not f.args
            or not isinstance(f.args[0], nodes.Const)
            or not isinstance(f.args[0].value, str)
        ):
            if not f.args and not any(k.key == "table" for k in f.kwargs):
                raise ExpressionProblem(
                    "the lookup filter needs a table name",
                    _find_word(source, "lookup", "|"),
                    "lookup('table-name') or lookup('table-name', default)",
                )
            continue
        table = f.args[0].value
        used.append(table)
        if known is not None and table not in known:
            raise ExpressionProblem(
                f"unknown lookup table '{table}'" + did_you_mean(table, known),
                _find_word(source, table),
                one_of(known) + " (declare it under 'lookups:')"
                if known
                else "a table declared under 'lookups:' (this flow declares none)",
            )
    return used


_MISS = object()


def _step(cur: Any, key: str | int) -> Any:
    """``cur[key]`` for a dict key or a list index that is there, else ``_MISS``."""
    if isinstance(cur, dict):
        return cur[key] if isinstance(key, str) and key in cur else _MISS
    if isinstance(cur, list) and isinstance(key, int) and -len(cur) <= key < len(cur):
        return cur[key]
    return _MISS


def _plain_path(expr: nodes.Expr) -> tuple[str, tuple[str | int, ...]] | None:
    """``(variable, keys)`` when the whole expression is one plain path whose keys can
    be read as dict keys or list indices with Jinja's meaning; otherwise None."""
    keys: list[str | int] = []
    cur: nodes.Node = expr
    while True:
        if isinstance(cur, nodes.Getattr):
            if hasattr(dict, cur.attr) or hasattr(list, cur.attr):
                return None  # Jinja would give the method (body.items), not the key
            keys.append(cur.attr)
            cur = cur.node
        elif isinstance(cur, nodes.Getitem):
            arg = cur.arg
            if not isinstance(arg, nodes.Const) or type(arg.value) not in (str, int):
                return None
            keys.append(arg.value)
            cur = cur.node
        elif isinstance(cur, nodes.Name) and cur.ctx == "load":
            return cur.name, tuple(reversed(keys))
        else:
            return None


def _chains(expr: nodes.Expr) -> list[tuple[str, tuple[str | int, ...]]]:
    """Attribute/item chains rooted at a variable with constant keys: body.a['b'].c."""
    out: list[tuple[str, tuple[str | int, ...]]] = []
    for node in _nodes(expr, (nodes.Getattr, nodes.Getitem)):
        keys: list[str | int] = []
        cur: nodes.Node = node
        ok = True
        while True:
            if isinstance(cur, nodes.Getattr):
                keys.append(cur.attr)
                cur = cur.node
            elif isinstance(cur, nodes.Getitem):
                arg = cur.arg
                if not isinstance(arg, nodes.Const) or not isinstance(arg.value, str | int):
                    ok = False
                    break
                keys.append(arg.value)
                cur = cur.node
            else:
                break
        if ok and isinstance(cur, nodes.Name):
            out.append((cur.name, tuple(reversed(keys))))
    out.sort(key=lambda c: len(c[1]))
    return out


class Expression:
    """One compiled expression. Call it with the evaluation context (a mapping)."""

    __slots__ = ("_compiled", "_path", "chains", "lookup_tables", "source")

    def __init__(
        self,
        source: str,
        names: Iterable[str] | None = None,
        tables: Iterable[str] | None = None,
    ) -> None:
        self.source = source
        expr = _parse(source)
        self.lookup_tables: tuple[str, ...] = tuple(_check(expr, source, names, tables))
        self.chains = tuple(_chains(expr))
        self._path = _plain_path(expr)
        try:
            self._compiled: TemplateExpression = ENV.compile_expression(
                source, undefined_to_none=False
            )
        except TemplateError as exc:  # pragma: no cover - _parse catches these first
            raise ExpressionProblem(
                f"invalid expression: {exc}", 0, "a Jinja2 expression"
            ) from None

    def __call__(self, ctx: Mapping[str, Any]) -> Any:
        """Evaluate; a missing field raises ``jinja2.UndefinedError``."""
        if self._path is not None:
            # Fast path for plain paths (body.order.id, headers['x-id']): walk dicts and
            # lists directly. Anything unusual (a miss, a non-container, a key that is
            # also a dict method name) goes the Jinja way, which has the last word.
            root, keys = self._path
            cur: Any = ctx.get(root, _MISS)
            for k in keys:
                cur = _step(cur, k)
                if cur is _MISS:
                    break
            if cur is not _MISS:
                return cur
        result = self._compiled(ctx)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def missing_path(
        self, ctx: Mapping[str, Any]
    ) -> tuple[str, tuple[str | int, ...], bool] | None:
        """After an ``UndefinedError``: the first chain step absent from ``ctx``, as
        ``(variable, keys up to the missing one, parent_was_null)``."""
        for root, keys in self.chains:
            if root not in ctx:
                return root, (), False
            cur: Any = ctx[root]
            for i, k in enumerate(keys):
                if cur is None:
                    return root, keys[: i + 1], True
                if isinstance(cur, Mapping):
                    if k in cur or str(k) in cur:
                        cur = cur[k] if k in cur else cur[str(k)]
                        continue
                    return root, keys[: i + 1], False
                if isinstance(cur, list | tuple) and isinstance(k, int):
                    if -len(cur) <= k < len(cur):
                        cur = cur[k]
                        continue
                    return root, keys[: i + 1], False
                if isinstance(k, str) and not k.startswith("_") and hasattr(cur, k):
                    cur = getattr(cur, k)
                    continue
                return root, keys[: i + 1], False
        return None


def compile_expression(
    source: str,
    names: Iterable[str] | None = None,
    tables: Iterable[str] | None = None,
) -> Expression:
    """Check and compile ``source`` once. ``names``: the variables it may use (None: any);
    ``tables``: the lookup tables it may name (None: any). Raises ExpressionProblem."""
    return Expression(source, names, tables)


def to_json_value(value: Any) -> Any:
    """``value`` as JSON-ready data: Decimal -> str, datetime -> ISO 8601 UTC, tuples ->
    lists. Raises FilterError for what JSON cannot carry."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return str(value) if isinstance(value, Markup) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{value} cannot be sent as a JSON number")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FilterError(f"{value} cannot be sent as a JSON number")
        return str(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, Undefined):
        str(value)
    raise FilterError(f"a {type(value).__name__} value cannot be sent as JSON")
