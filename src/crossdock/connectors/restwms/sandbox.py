"""The ready definition for the sandbox warehouse (:mod:`crossdock.emulators.warehouse`).

``sandbox-warehouse.yaml`` beside this module is a complete, commented definition; copy it
under a connection's ``settings:`` in ``crossdock.yaml`` to start from a working WMS.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SANDBOX_DEFINITION_PATH", "sandbox_definition"]

SANDBOX_DEFINITION_PATH = Path(__file__).with_name("sandbox-warehouse.yaml")


@cache
def _load() -> dict[str, Any]:
    data = yaml.safe_load(SANDBOX_DEFINITION_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def sandbox_definition(
    base_url: str | None = None,
    *,
    api_key: str | None = None,
    webhook_secret: str | None = None,
) -> dict[str, Any]:
    """The sandbox warehouse's definition as settings data (a fresh copy), optionally
    pointed at ``base_url`` and with other credentials than the emulator's defaults."""
    data = copy.deepcopy(_load())
    if base_url is not None:
        data["base_url"] = base_url
    if api_key is not None:
        data["auth"]["key"] = api_key
    if webhook_secret is not None:
        data["webhook"]["signature"]["secret"] = webhook_secret
    return data
