"""Connector instances for the running hub: one shared ``httpx.AsyncClient`` per event
loop, one connector instance per connection, and what a connector offers (for checking
flows and config without touching the network)."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from crossdock.project.config import ConnectionConfig
    from crossdock.sdk.connector import Connector
    from crossdock.security.redact import Redactor

__all__ = ["Description", "close_http_clients", "describe", "http_client", "instantiate"]

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def http_client() -> httpx.AsyncClient:
    """The vendor HTTP client of the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            timeout=30.0,
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


async def close_http_clients() -> None:
    """Close the running loop's vendor client (at shutdown)."""
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose()


def instantiate(
    cfg: ConnectionConfig, redactor: Redactor | None = None, http: httpx.AsyncClient | None = None
) -> Connector:
    """A connector instance for ``cfg`` on the running loop's client (or ``http``)."""
    from crossdock.sdk.registry import get_connector

    cls = get_connector(cfg.connector)
    return cls(
        cfg.connector_settings(),
        http=http if http is not None else http_client(),
        connection=cfg.name,
        redactor=redactor,
    )


@dataclass(frozen=True)
class Description:
    """What a connection's connector offers."""

    connector: str
    actions: dict[str, str | None]
    """action name -> the action used instead when the record already exists there"""
    streams: dict[str, tuple[str, ...]]
    """stream name -> event types"""
    webhooks: bool
    api_version: str
    sunset_warning: str | None


@lru_cache(maxsize=1)
def _offline_client() -> httpx.AsyncClient:
    """One client for the instances built only to be described (they never call out)."""
    return httpx.AsyncClient()


@lru_cache(maxsize=256)
def _describe(connector: str, settings_json: str, name: str) -> Description:
    import orjson

    from crossdock.sdk.registry import get_connector

    cls = get_connector(connector)
    settings = cls.settings_model.model_validate(orjson.loads(settings_json))
    inst = cls(settings, http=_offline_client(), connection=name)
    return Description(
        connector=connector,
        actions={n: a.when_exists for n, a in inst.actions.items()},
        streams={n: tuple(s.event_types) for n, s in inst.streams.items()},
        webhooks=inst.webhooks is not None,
        api_version=cls.api_version,
        sunset_warning=cls.sunset_warning(),
    )


def describe(cfg: ConnectionConfig) -> Description:
    """What ``cfg``'s connector offers (built once per distinct settings)."""
    import orjson

    from crossdock.project.config import _plain

    settings_json = orjson.dumps(_plain(cfg.settings or {}), option=orjson.OPT_SORT_KEYS)
    return _describe(cfg.connector, settings_json.decode(), cfg.name)
