"""Which connectors are installed: the built-in ones and third-party packages.

A third-party package registers its connector class in its ``pyproject.toml``::

    [project.entry-points."crossdock.connectors"]
    mywms = "crossdock_mywms:MyWmsConnector"

and ``connector: mywms`` then works in ``crossdock.yaml``. Built-in connectors are
listed here by import path, so importing Crossdock does not import every vendor.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from crossdock.sdk.connector import Connector
from crossdock.sdk.errors import UnknownConnector

__all__ = ["BUILTIN", "available", "get_connector", "load_object"]

GROUP = "crossdock.connectors"

BUILTIN: dict[str, str] = {
    "shopify": "crossdock.connectors.shopify:ShopifyConnector",
    "rest-wms": "crossdock.connectors.restwms:RestWmsConnector",
    "shipengine": "crossdock.connectors.shipengine:ShipEngineConnector",
    "odoo": "crossdock.connectors.odoo:OdooConnector",
}


def load_object(ref: str) -> object:
    """Import ``module:attribute``."""
    module, _, attr = ref.partition(":")
    obj: object = importlib.import_module(module.strip())
    for part in attr.strip().split("."):
        if part:
            obj = getattr(obj, part)
    return obj


@cache
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def available() -> dict[str, str]:
    """Every installed connector name and where it comes from (import path)."""
    return {**_plugins(), **BUILTIN}


@cache
def get_connector(name: str) -> type[Connector]:
    """The connector class called ``name``; raise :class:`UnknownConnector`."""
    ref = BUILTIN.get(name) or _plugins().get(name)
    if ref is None:
        known = ", ".join(sorted(["http", *available()]))
        raise UnknownConnector(f"no connector named '{name}' is installed (known: {known})")
    cls = load_object(ref)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise UnknownConnector(f"'{ref}' (connector '{name}') is not a Connector class")
    return cls
