"""YAML with line numbers, ``${ENV}`` substitution, and errors that name file and line.

Every configuration problem becomes a :class:`ConfigIssue` — file, line, column, what is
wrong and what would be right — and a load raises one :class:`ConfigError` carrying *all*
the issues found, so a user fixes a file in one pass rather than one error at a time.

:func:`load_yaml` composes the document with PyYAML's node API, builds plain Python data
from it and keeps a :class:`SourceMap` of where every mapping key and value sits. A
Pydantic ``ValidationError`` location such as ``('action', 'operation')`` is turned into
``file:line:column`` by :meth:`SourceMap.issues_from_validation`.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "SourceMap",
    "did_you_mean",
    "display_path",
    "format_path",
    "issues_from_validation",
    "load_yaml",
    "one_of",
    "substitute_env",
]

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file: where, what is wrong, what would be right.

    ``line`` and ``column`` are 1-based; ``0`` means "no position" (e.g. a setting sent
    through the REST API, where ``path`` is a JSON pointer instead).
    """

    file: str
    line: int
    column: int
    message: str
    expected: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file
        text = f"{where}: "
        if self.path:
            text += f"{self.path}: "
        text += self.message
        if self.expected:
            text += f" — expected {self.expected}"
        return text


class ConfigError(Exception):
    """A configuration that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        unique: dict[tuple[str, int, int, str, str | None], ConfigIssue] = {}
        for issue in issues:
            unique.setdefault(
                (issue.file, issue.line, issue.column, issue.message, issue.path), issue
            )
        self.issues: list[ConfigIssue] = sorted(
            unique.values(), key=lambda i: (i.file, i.line, i.column)
        )
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


def one_of(choices: Iterable[str]) -> str:
    """``"one of: a, b, c"`` (sorted), or ``"nothing: none are defined"``."""
    items = sorted(str(c) for c in choices)
    if not items:
        return "nothing: none are defined"
    return "one of: " + ", ".join(items)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` — did you mean 'x'?`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (for messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def format_path(loc: Sequence[str | int]) -> str:
    """``('flows', 0, 'action')`` -> ``flows[0].action``."""
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += ("." if out else "") + seg
    return out


# --- environment variables ---------------------------------------------------------

_VAR_RE = re.compile(r"\$\$|\$\{([^}]*)\}")
_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)


def substitute_env(text: str, env: Mapping[str, str]) -> tuple[str, list[tuple[str, str | None]]]:
    """Replace ``${VAR}`` and ``${VAR:-default}`` (``$$`` is a literal ``$``).

    Returns the new text and a list of problems as ``(message, expected)``.
    """
    if "$" not in text:
        return text, []
    problems: list[tuple[str, str | None]] = []

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        inner = m.group(1)
        nm = _NAME_RE.match(inner)
        if nm is None:
            problems.append(
                (
                    f"'${{{inner}}}' is not a valid environment variable reference",
                    "${NAME} or ${NAME:-default} (write $$ for a literal $)",
                )
            )
            return m.group(0)
        name, default = nm.group(1), nm.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            problems.append(
                (
                    f"environment variable {name} is not set",
                    f"{name} to be set, or a default: ${{{name}:-value}}",
                )
            )
            return m.group(0)
        return value

    return _VAR_RE.sub(repl, text), problems


# --- loading -----------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps (a date stays the string the user wrote)."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


@dataclass(frozen=True)
class _Pos:
    line: int
    column: int
    style: str | None = None


class SourceMap:
    """Where every mapping key and value of one YAML document is (1-based)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[Loc, _Pos] = {(): _Pos(1, 1)}
        self.keys: dict[Loc, _Pos] = {}

    def value_position(self, path: Loc) -> tuple[int, int]:
        """Line and column of the value at ``path`` (or its closest ancestor)."""
        while path and path not in self.values:
            path = path[:-1]
        p = self.values.get(path, _Pos(1, 1))
        return p.line, p.column

    def key_position(self, path: Loc) -> tuple[int, int]:
        """Line and column of the key leading to ``path`` (or its closest ancestor)."""
        while path and path not in self.keys:
            path = path[:-1]
        p = self.keys.get(path) or self.values.get(path, _Pos(1, 1))
        return p.line, p.column

    def text_offset_position(self, path: Loc, offset: int) -> tuple[int, int]:
        """Position of character ``offset`` inside the one-line scalar at ``path``."""
        p = self.values.get(path)
        if p is None:
            return self.value_position(path)
        if p.style in ("|", ">"):
            return p.line, p.column
        quote = 1 if p.style in ('"', "'") else 0
        return p.line, p.column + quote + max(offset, 0)

    def issue(
        self,
        path: Loc,
        message: str,
        expected: str | None = None,
        *,
        on_key: bool = False,
        offset: int | None = None,
    ) -> ConfigIssue:
        """An issue located at the value (or key) at ``path``."""
        if offset is not None:
            line, col = self.text_offset_position(path, offset)
        elif on_key or path not in self.values:
            line, col = self.key_position(path)
        else:
            line, col = self.value_position(path)
        return ConfigIssue(self.file, line, col, message, expected, format_path(path) or None)

    def resolve(self, loc: Sequence[str | int]) -> tuple[Loc, Loc]:
        """Split a validation location into (the part present in the file, the rest).

        Segments that are not keys of the document (union tags such as ``'bearer'``,
        validator names) are skipped when a later segment is found again.
        """
        found: Loc = ()
        rest: list[str | int] = []
        for seg in loc:
            cand = (*found, seg)
            if cand in self.values:
                found = cand
                rest = []
            else:
                rest.append(seg)
        return found, tuple(rest)

    def issues_from_validation(
        self,
        exc: ValidationError,
        model: type[BaseModel] | None = None,
        prefix: Loc = (),
    ) -> list[ConfigIssue]:
        """Turn a Pydantic ``ValidationError`` into issues with file, line and column."""
        return issues_from_validation(exc, model, prefix, self)


def _explain(
    err: Mapping[str, Any], model: type[BaseModel] | None, loc: Loc
) -> tuple[str, str | None]:
    """Plain words for one Pydantic error: (message, expected)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    inp = err.get("input")
    last = loc[-1] if loc else ""
    if kind == "missing":
        return f"missing required key '{last}'", None
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1]) if model is not None else []
        return (
            f"unknown key '{last}'" + did_you_mean(str(last), allowed),
            one_of(allowed) if allowed else None,
        )
    if kind == "literal_error":
        return f"{inp!r} is not allowed", f"one of {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", ""))
        return (
            f"unknown {str(ctx.get('discriminator', 'type')).strip(chr(39))} {ctx.get('tag')!r}"
            + did_you_mean(str(ctx.get("tag")), [t.strip(" '") for t in tags.split(",")]),
            f"one of: {tags}",
        )
    if kind == "union_tag_not_found":
        return f"missing key '{str(ctx.get('discriminator')).strip(chr(39))}'", None
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])), None
    if isinstance(ctx.get("message"), str) and "expected" in ctx:
        # Our own PydanticCustomError: message and expected carried in the context.
        return str(ctx["message"]), str(ctx["expected"]) if ctx["expected"] else None
    msg = str(err["msg"])
    if isinstance(inp, str | int | float | bool) and str(last) not in _SECRET_WORDS:
        msg += f", got {inp!r}"
    return msg[:1].lower() + msg[1:], None


_SECRET_WORDS = {"secret", "token", "password", "value"}


def issues_from_validation(
    exc: ValidationError,
    model: type[BaseModel] | None,
    prefix: Loc = (),
    smap: SourceMap | None = None,
    file: str = "",
) -> list[ConfigIssue]:
    """Issues for a ``ValidationError``: located by ``smap`` when given, else by a JSON
    pointer (``/outbound/auth/token``) in ``path`` with no line."""
    out: list[ConfigIssue] = []
    for err in exc.errors(include_url=False):
        raw_loc: Loc = tuple(err["loc"])
        message, expected = _explain(err, model, raw_loc)
        ctx = err.get("ctx") or {}
        full = (*prefix, *raw_loc)
        if smap is None:
            pointer = "/" + "/".join(str(s) for s in raw_loc) if raw_loc else "/"
            out.append(ConfigIssue(file, 0, 0, message, expected, pointer))
            continue
        found, rest = smap.resolve(full)
        shown = found + rest[-1:] if err["type"] in ("missing", "extra_forbidden") else found
        offset = ctx.get("offset") if isinstance(ctx.get("offset"), int) else None
        if rest:
            line, col = smap.key_position(found) if found else (1, 1)
        elif err["type"] == "extra_forbidden":
            line, col = smap.key_position(found)
        elif offset is not None:
            line, col = smap.text_offset_position(found, offset)
        else:
            line, col = smap.value_position(found)
        out.append(ConfigIssue(smap.file, line, col, message, expected, format_path(shown) or None))
    return out


def _strip(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _allowed_keys(model: type[BaseModel] | None, loc: Loc) -> list[str]:
    """The field names of the model found at ``loc`` under ``model``, if any."""
    tp: Any = model
    for seg in loc:
        tp = _strip(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(seg))
            if field is not None:
                tp = field.annotation
            continue
        if origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            picked = None
            for member in typing.get_args(tp):
                member = _strip(member)
                if isinstance(member, type) and issubclass(member, BaseModel):
                    for f in member.model_fields.values():
                        if typing.get_origin(
                            f.annotation
                        ) is typing.Literal and seg in typing.get_args(f.annotation):
                            picked = member
                    if member.__name__ == seg:
                        picked = member
            if picked is not None:
                tp = picked
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


class _Builder:
    def __init__(self, loader: _Loader, smap: SourceMap, env: Mapping[str, str] | None) -> None:
        self.loader = loader
        self.smap = smap
        self.env = env
        self.issues: list[ConfigIssue] = []
        self.depth = 0

    def build(self, node: yaml.Node, path: Loc) -> Any:
        self.smap.values[path] = _Pos(
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            getattr(node, "style", None),
        )
        self.depth += 1
        try:
            if self.depth > 200:
                self.issues.append(self.smap.issue(path, "the document nests too deeply"))
                return None
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self.depth -= 1

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[str, Any]:
        self.loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append(
                    ConfigIssue(
                        self.smap.file,
                        kline,
                        kcol,
                        "a key must be a plain word",
                        None,
                        format_path(path) or None,
                    )
                )
                continue
            # Keys stay the text the user wrote: `NO:` is "NO", not False.
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                first = self.smap.keys[child]
                self.issues.append(
                    ConfigIssue(
                        self.smap.file,
                        kline,
                        kcol,
                        f"duplicate key '{key}' (first at line {first.line})",
                        "each key once",
                        format_path(path) or None,
                    )
                )
                continue
            self.smap.keys[child] = _Pos(kline, kcol)
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: yaml.Node, path: Loc) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str) and self.env is not None:
            value, problems = substitute_env(value, self.env)
            for message, expected in problems:
                self.issues.append(self.smap.issue(path, message, expected))
        return value


def load_yaml(
    text: str, source: str, env: Mapping[str, str] | None = None
) -> tuple[Any, SourceMap, list[ConfigIssue]]:
    """Parse one YAML document keeping positions.

    Returns ``(data, source_map, issues)``; ``issues`` are the problems that do not stop
    reading (unset environment variables, duplicate keys). A syntax error raises
    :class:`ConfigError` at once with its line and column. ``env=None`` disables
    ``${VAR}`` substitution.
    """
    smap = SourceMap(source)
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or "invalid YAML"
            if exc.context and exc.problem:
                problem = f"{problem} ({exc.context})"
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise ConfigError(
                [ConfigIssue(source, line, col, f"YAML syntax error: {problem}", "valid YAML")]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                [ConfigIssue(source, 1, 1, f"YAML syntax error: {exc}", "valid YAML")]
            ) from None
        if node is None:
            return None, smap, []
        builder = _Builder(loader, smap, env)
        try:
            data = builder.build(node, ())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise ConfigError([ConfigIssue(source, line, col, f"YAML error: {exc}")]) from None
        return data, smap, builder.issues
    finally:
        loader.dispose()
