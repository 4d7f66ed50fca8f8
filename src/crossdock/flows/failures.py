"""Why a delivery could not be mapped, in plain words, and how to fix it.

Evaluating a flow's expressions never lets a Python error escape: :func:`evaluate`
turns each failure into a :class:`MappingFailure` with a category, a reason and a fix an
operations person can act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import SecurityError, UndefinedError

from crossdock.flows.expressions import Expression, FilterError, LookupMiss
from crossdock.project.yamlsrc import format_path

__all__ = ["MappingFailure", "Site", "evaluate"]


class MappingFailure(Exception):
    """A delivery that cannot be mapped: ``category`` ("lookup", "mapping"), a plain
    ``reason``, the ``fix``, and the mapping ``field`` concerned (if any)."""

    def __init__(self, category: str, reason: str, fix: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason
        self.fix = fix
        self.field = field

    def __repr__(self) -> str:
        return f"MappingFailure({self.category!r}, {self.reason!r})"


@dataclass(frozen=True)
class Site:
    """Where a flow lives, for messages: its name, file and lookup tables' places."""

    flow: str
    file: str
    tables: Mapping[str, str] = field(default_factory=dict)


def _label(table: str) -> str:
    """``skus`` -> ``SKU``, ``carriers`` -> ``Carrier``, ``countries`` -> ``Country``."""
    word = table
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("ses", "xes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and len(word) > 1 and not word.endswith("ss"):
        word = word[:-1]
    word = word.replace("_", " ").replace("-", " ")
    return word.upper() if len(word) <= 3 else word[:1].upper() + word[1:]


def _what(field_name: str | None) -> str:
    if field_name is None or field_name == "filter":
        return "the filter"
    if field_name.startswith("path_params."):
        return f"path parameter '{field_name.removeprefix('path_params.')}'"
    return f"'{field_name}'"


def _join(prefix: str, keys: tuple[str | int, ...]) -> str:
    path = format_path(keys)
    if not prefix or not path:
        return prefix or path
    return prefix + ("" if path.startswith("[") else ".") + path


def _missing(
    expr: Expression,
    ctx: Mapping[str, Any],
    exc: Exception,
    field_name: str | None,
    line: int,
    site: Site,
    origins: Mapping[str, str],
) -> MappingFailure:
    what = _what(field_name)
    fix = (
        f"Check that the source system sends it, or change the expression for {what} "
        f"({site.file} line {line}), e.g. with | default(...); then retry the delivery."
    )
    found = expr.missing_path(ctx)
    if found is None:
        reason = f"a value needed for {what} is missing ({exc})"
        return MappingFailure("mapping", reason, fix, field_name)
    root, keys, parent_null = found
    if root == "headers" and keys:
        reason = f"the event has no header '{keys[0]}' (needed for {what})"
        return MappingFailure("mapping", reason, fix, field_name)
    if root == "body":
        prefix = ""
    elif root in origins:
        prefix = origins[root]
    elif root in ("event", "xref"):
        prefix = root
    else:
        prefix = root
    full = _join(prefix, keys)
    if not full:
        reason = f"the value '{root}' is missing (needed for {what})"
    elif parent_null:
        parent = _join(prefix, keys[:-1]) or root
        reason = (
            f"the event's field '{parent}' is empty (null), so it has no '{keys[-1]}' "
            f"(needed for {what})"
        )
    else:
        reason = f"the event has no field '{full}' (needed for {what})"
    return MappingFailure("mapping", reason, fix, field_name)


def evaluate(
    expr: Expression,
    ctx: Mapping[str, Any],
    *,
    field: str | None,
    line: int,
    site: Site,
    origins: Mapping[str, str] | None = None,
) -> Any:
    """Evaluate ``expr``; any failure becomes a :class:`MappingFailure`."""
    try:
        return expr(ctx)
    except LookupMiss as miss:
        where = site.tables.get(miss.table)
        if not miss.known or where is None:
            raise (
                MappingFailure(
                    "mapping",
                    f"lookup table '{miss.table}' does not exist in flow {site.flow} "
                    f"(needed for {_what(field)})",
                    f"Declare the table under 'lookups:' in {site.file}, or fix the "
                    f"expression at line {line}; then retry the delivery.",
                    field,
                )
            ) from None
        raise (
            MappingFailure(
                "lookup",
                f"{_label(miss.table)} '{miss.key}' is not in lookup table '{miss.table}' "
                f"of flow {site.flow}",
                f"Add '{miss.key}' to the '{miss.table}' table ({where}) and retry the delivery",
                field,
            )
        ) from None
    except UndefinedError as exc:
        raise _missing(expr, ctx, exc, field, line, site, origins or {}) from None
    except FilterError as exc:
        raise (
            MappingFailure(
                "mapping",
                f"{_what(field)} could not be computed: {exc} (expression: {expr.source})",
                f"Correct the value in the source system, or the expression in {site.file} "
                f"line {line}; then retry the delivery.",
                field,
            )
        ) from None
    except MappingFailure:
        raise
    except SecurityError as exc:
        raise (
            MappingFailure(
                "mapping",
                f"the expression for {_what(field)} does something flows may not do: {exc}",
                f"Change the expression in {site.file} line {line}.",
                field,
            )
        ) from None
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        raise (
            MappingFailure(
                "mapping",
                f"{_what(field)} could not be computed with '{expr.source}': {detail}",
                f"Check the event's data, or change the expression in {site.file} line "
                f"{line}; then retry the delivery.",
                field,
            )
        ) from None
