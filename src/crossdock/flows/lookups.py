"""Lookup tables of a flow: inline mappings or two-column CSV / YAML files.

::

    lookups:
      skus: {ABC-1: WH-ABC-1}                       # inline
      carriers: {$file: ../lookups/carriers.csv}    # relative to the flow file
      codes: {$file: codes.csv, $header: true}      # skip the CSV's first row

Keys are always strings (``NO:`` stays ``"NO"``); values keep their YAML type. Tables
are read once, when the flow is loaded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.project.yamlsrc import (
    ConfigError,
    ConfigIssue,
    SourceMap,
    did_you_mean,
    display_path,
    load_yaml,
)

__all__ = ["LookupTables", "load_lookup_tables"]

_DIRECTIVES = ("$file", "$header")


@dataclass(frozen=True)
class LookupTables:
    """The tables (name -> key -> value) and where each is defined, for fix messages."""

    tables: Mapping[str, Mapping[str, Any]]
    where: Mapping[str, str]


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load_lookup_tables(
    raw: Any, smap: SourceMap, base_dir: Path, issues: list[ConfigIssue]
) -> LookupTables:
    """Read the ``lookups:`` section; problems are appended to ``issues``."""
    tables: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    if not isinstance(raw, dict):
        return LookupTables(tables, where)
    for name, spec in raw.items():
        path = ("lookups", name)
        line, _ = smap.key_position(path)
        if isinstance(spec, dict) and any(str(k).startswith("$") for k in spec):
            unknown = [k for k in spec if k not in _DIRECTIVES]
            for k in unknown:
                issues.append(
                    smap.issue(
                        (*path, k),
                        f"unknown key '{k}' in a lookup file reference"
                        + did_you_mean(str(k), _DIRECTIVES),
                        "{$file: path/to/table.csv} (optionally with $header: true)",
                        on_key=True,
                    )
                )
            file = spec.get("$file")
            if not isinstance(file, str) or not file:
                issues.append(
                    smap.issue(
                        (*path, "$file") if "$file" in spec else path,
                        "a lookup file reference needs '$file'",
                        "a path to a two-column .csv or a .yaml mapping",
                    )
                )
                continue
            header = spec.get("$header", False)
            if not isinstance(header, bool):
                issues.append(
                    smap.issue((*path, "$header"), f"{header!r} is not true or false", "true/false")
                )
                header = False
            target = (base_dir / file).resolve() if not Path(file).is_absolute() else Path(file)
            table = _read_file(target, file, header, smap, (*path, "$file"), issues)
            if table is not None:
                tables[str(name)] = table
                where[str(name)] = display_path(target)
            continue
        if isinstance(spec, dict):
            tables[str(name)] = {_key(k): v for k, v in spec.items()}
            where[str(name)] = f"{smap.file} line {line}"
            continue
        issues.append(
            smap.issue(
                path,
                f"lookup table '{name}' is not a mapping",
                "a mapping of value: replacement, or {$file: path/to/table.csv}",
            )
        )
    return LookupTables(tables, where)


def _read_file(
    target: Path,
    written: str,
    header: bool,
    smap: SourceMap,
    at: tuple[str, ...],
    issues: list[ConfigIssue],
) -> dict[str, Any] | None:
    if not target.is_file():
        issues.append(
            smap.issue(
                at,
                f"lookup file '{written}' not found (looked for {target})",
                "a path relative to the flow file",
            )
        )
        return None
    try:
        text = target.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(smap.issue(at, f"cannot read lookup file '{written}': {exc}"))
        return None
    suffix = target.suffix.lower()
    if suffix == ".csv":
        return _read_csv(text, display_path(target), header, issues)
    if suffix in (".yaml", ".yml", ".json"):
        try:
            data, _, problems = load_yaml(text, display_path(target), None)
        except ConfigError as exc:
            issues.extend(exc.issues)
            return None
        issues.extend(problems)
        if data is None:
            return {}
        if not isinstance(data, dict):
            issues.append(
                ConfigIssue(
                    display_path(target),
                    1,
                    1,
                    "a lookup file must be a mapping",
                    "key: value lines",
                )
            )
            return None
        return {_key(k): v for k, v in data.items()}
    issues.append(
        smap.issue(
            at, f"lookup file '{written}' has an unknown type", "a .csv, .yaml or .json file"
        )
    )
    return None


def _read_csv(
    text: str, file: str, header: bool, issues: list[ConfigIssue]
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    first_row: dict[str, int] = {}
    ok = True
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if header and n == 1:
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            issues.append(
                ConfigIssue(file, n, 1, f"row has {len(row)} columns", "2 columns: key,value")
            )
            ok = False
            continue
        key, value = row[0].strip(), row[1].strip()
        if key in out:
            issues.append(
                ConfigIssue(
                    file,
                    n,
                    1,
                    f"duplicate key '{key}' (first on line {first_row[key]})",
                    "each key once",
                )
            )
            ok = False
            continue
        first_row[key] = n
        out[key] = value
    return out if ok else None
