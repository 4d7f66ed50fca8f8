"""The four sandbox systems of the order-to-cash chain, served on loopback.

Each emulator runs in its own thread and event loop (uvicorn), sends its webhooks to the
hub at ``{hub_url}/hooks/{workspace}/{connection}``, and exposes ``/_emulator/state``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from crossdock.cli.sandbox import emulator_factory
from crossdock.emulators.serving import Serving, serving

__all__ = ["SANDBOX_SECRETS", "SYSTEMS", "Sandbox", "running_sandbox"]

DEFAULT_PORTS: dict[str, int] = {"shop": 8101, "wms": 8102, "carrier": 8103, "erp": 8104}
"""Where ``crossdock demo`` serves the sandboxes (the chain project's default URLs)."""

SYSTEMS: dict[str, str] = {
    "shop": "shopify",
    "wms": "rest-wms",
    "carrier": "shipengine",
    "erp": "odoo",
}
"""Connection name in the chain project -> connector (and emulator)."""

SANDBOX_SECRETS: dict[str, str] = {
    "SHOPIFY_ACCESS_TOKEN": "shpat_sandbox_token",
    "SHOPIFY_CLIENT_SECRET": "shpss_sandbox_secret",
    "WMS_API_KEY": "wms-sandbox-key",
    "WMS_WEBHOOK_SECRET": "wms-sandbox-webhook-secret",
    "SHIPENGINE_API_KEY": "TEST_sandbox_shipengine_key",
    "ODOO_API_KEY": "odoo-sandbox-api-key",
}
"""The sandbox credentials (the emulators accept these; the project reads them from
the environment like any real credential)."""


SHOP_DOMAIN = "acme-apparel.myshopify.com"

SHOPIFY_PLANS: dict[str, dict[str, float]] = {
    "standard": {"cost_max": 2000, "cost_restore_rate": 100},
    "advanced": {"cost_max": 4000, "cost_restore_rate": 200},
    "plus": {"cost_max": 20000, "cost_restore_rate": 1000},
}
"""Shopify's GraphQL cost limits per plan (points; points restored per second)."""


def _options(connection: str, hub_url: str, workspace: str) -> dict[str, Any]:
    hook = f"{hub_url}/hooks/{workspace}/{connection}"
    s = SANDBOX_SECRETS
    common = {"webhook_url": hook}
    return {
        "shop": {
            **common,
            "webhook_secret": s["SHOPIFY_CLIENT_SECRET"],
            "client_secret": s["SHOPIFY_CLIENT_SECRET"],
            "access_token": s["SHOPIFY_ACCESS_TOKEN"],
            "shop": SHOP_DOMAIN,
        },
        "wms": {
            **common,
            "webhook_secret": s["WMS_WEBHOOK_SECRET"],
            "api_key": s["WMS_API_KEY"],
        },
        "carrier": {**common, "api_key": s["SHIPENGINE_API_KEY"]},
        "erp": {"api_key": s["ODOO_API_KEY"], "database": "sandbox"},
    }[connection]


@dataclass
class Sandbox:
    """The running emulators: base URLs, state objects and apps, by connection name."""

    servers: dict[str, Serving] = field(default_factory=dict)
    apps: dict[str, Any] = field(default_factory=dict)

    def url(self, connection: str) -> str:
        """Base URL of the emulator behind ``connection``."""
        return self.servers[connection].url

    def state(self, connection: str) -> Any:
        """The emulator's in-process state object (``app.state.emulator``)."""
        return self.apps[connection].state.emulator

    def env(self) -> dict[str, str]:
        """Environment for the chain project: emulator URLs and sandbox secrets."""
        return {
            **SANDBOX_SECRETS,
            "SHOP_URL": self.url("shop"),
            "WMS_URL": self.url("wms"),
            "CARRIER_URL": self.url("carrier"),
            "ERP_URL": self.url("erp"),
        }


@contextlib.contextmanager
def running_sandbox(
    hub_url: str,
    *,
    workspace: str = "acme",
    ports: Mapping[str, int] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    common: Mapping[str, Any] | None = None,
) -> Iterator[Sandbox]:
    """Start the four emulators for the ``with`` block.

    ``options`` adds or overrides emulator options per connection name; ``common`` is
    given to every emulator that accepts it (``time_scale``, ``duplicate_probability``,
    ``seed``). Options an emulator does not take are left out.
    """
    sandbox = Sandbox()
    with contextlib.ExitStack() as stack:
        for conn, connector in SYSTEMS.items():
            factory = emulator_factory(connector)
            accepted = inspect.signature(factory).parameters
            wanted = {
                **(common or {}),
                **_options(conn, hub_url, workspace),
                **((options or {}).get(conn) or {}),
            }
            app = factory(**{k: v for k, v in wanted.items() if k in accepted})
            sandbox.apps[conn] = app
            port = (ports or {}).get(conn, 0)
            sandbox.servers[conn] = stack.enter_context(serving(app, port=port))
        yield sandbox
