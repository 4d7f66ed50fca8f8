"""The official vendor specs, read from ``../shared/specs`` beside the checkout (never
copied into the repository). ``CROSSDOCK_SPECS_DIR`` points elsewhere."""

from __future__ import annotations

import gzip
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["shipengine_openapi", "shopify_introspection", "specs_dir"]


def specs_dir() -> Path:
    """Where the vendor specs are."""
    env = os.environ.get("CROSSDOCK_SPECS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "specs"
        if (parent / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "specs"


@cache
def shopify_introspection() -> dict[str, Any]:
    """Shopify Admin GraphQL 2025-01 introspection result (``{"data": {"__schema"...}}``
    or ``{"__schema": ...}`` as published)."""
    path = specs_dir() / "shopify" / "admin_schema_2025-01.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def shipengine_openapi() -> dict[str, Any]:
    """ShipEngine's OpenAPI 3.0 document."""
    import yaml

    path = specs_dir() / "shipengine" / "openapi.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data
