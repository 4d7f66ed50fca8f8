"""The registry: what one process knows about workspaces, connections and flows.

Built from the database (the runtime truth, which ``crossdock serve`` and ``crossdock
apply`` fill from the project folder, and the API changes), with every expression
compiled once. Lookups on the hot path are dictionary reads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crossdock.flows import Flow
from crossdock.flows.expressions import compile_expression
from crossdock.project.config import ConnectionConfig
from crossdock.runtime.connectors import Description, describe, instantiate
from crossdock.sdk.connector import Connector
from crossdock.security.redact import Redactor
from crossdock.store.events import FlowRoute

Compiled = Callable[[Mapping[str, Any]], Any]


@dataclass
class Inbound:
    """Compiled extraction expressions of a webhook-receiving connection."""

    event_type: Compiled
    record_key: Compiled
    version: Compiled | None
    event_id: Compiled | None


@dataclass
class Poll:
    """Compiled expressions of a polling source."""

    items: Compiled
    next_page: Compiled | None
    cursor: Compiled
    event_type: Compiled
    record_key: Compiled
    version: Compiled | None
    event_id: Compiled | None


def _opt(src: str | None) -> Compiled | None:
    return compile_expression(src) if src else None


@dataclass
class ConnectionRuntime:
    """A connection ready to use: its settings, redactor and compiled expressions."""

    workspace: str
    name: str
    config: ConnectionConfig
    redactor: Redactor
    inbound: Inbound | None
    poll: Poll | None = None
    _external_ids: dict[str, Compiled | None] = field(default_factory=dict)
    _connectors: dict[int, Connector] = field(default_factory=dict)

    @property
    def is_http(self) -> bool:
        """Whether this is the generic HTTP connector (else a named connector)."""
        return self.config.is_http

    def connector(self) -> Connector:
        """This connection's connector instance on the running event loop."""
        loop = id(asyncio.get_running_loop())
        inst = self._connectors.get(loop)
        if inst is None:
            inst = self._connectors[loop] = instantiate(self.config, self.redactor)
        return inst

    def live_connector(self) -> Connector | None:
        """A connector instance this process already made, if any (never makes one): its
        rate model has learnt the vendor's limits from the answers so far."""
        return next(iter(self._connectors.values()), None)

    @functools.cached_property
    def description(self) -> Description | None:
        """What the named connector offers (None for the http connector); built once."""
        return None if self.is_http else describe(self.config)

    def can_receive(self) -> bool:
        """Whether webhooks are received for this connection."""
        d = self.description
        return self.inbound is not None if d is None else d.webhooks

    def can_write(self) -> bool:
        """Whether flows can write to this connection."""
        d = self.description
        return self.config.outbound is not None if d is None else bool(d.actions)

    @property
    def limiter_key(self) -> str:
        """One rate limit per credential: the connection."""
        return f"{self.workspace}/{self.name}"

    def external_id(self, operation: str) -> Compiled | None:
        """The compiled expression reading the destination's id from an answer."""
        return self._external_ids.get(operation)

    @classmethod
    def build(cls, workspace: str, config: ConnectionConfig) -> ConnectionRuntime:
        """Compile a connection's expressions once."""
        inbound = None
        if config.inbound is not None:
            ib = config.inbound
            inbound = Inbound(
                event_type=compile_expression(ib.event_type),
                record_key=compile_expression(ib.record_key),
                version=compile_expression(ib.version) if ib.version else None,
                event_id=compile_expression(ib.event_id) if ib.event_id else None,
            )
        poll = None
        if config.poll is not None:
            p = config.poll
            poll = Poll(
                items=compile_expression(p.items),
                next_page=_opt(p.next_page),
                cursor=compile_expression(p.cursor),
                event_type=compile_expression(p.event_type),
                record_key=compile_expression(p.record_key),
                version=_opt(p.version),
                event_id=_opt(p.event_id),
            )
        ext: dict[str, Compiled | None] = {}
        if config.outbound is not None:
            for name, op in config.outbound.operations.items():
                ext[name] = compile_expression(op.external_id) if op.external_id else None
        return cls(
            workspace=workspace,
            name=config.name,
            config=config,
            redactor=Redactor(config.secret_values()),
            inbound=inbound,
            poll=poll,
            _external_ids=ext,
        )


@dataclass
class WorkspaceRuntime:
    """A workspace's connections and flows."""

    id: str
    name: str
    connections: dict[str, ConnectionRuntime] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)


class Registry:
    """Every workspace this process serves, indexed for the hot path."""

    def __init__(self, workspaces: Mapping[str, WorkspaceRuntime], version: int = 0) -> None:
        self.workspaces = dict(workspaces)
        self.version = version
        self._routes: dict[tuple[str, str, str], list[FlowRoute]] = {}

    def connection(self, workspace: str, name: str) -> ConnectionRuntime | None:
        """The connection ``name`` of ``workspace``, if any."""
        ws = self.workspaces.get(workspace)
        return ws.connections.get(name) if ws else None

    def flow(self, workspace: str, name: str) -> Flow | None:
        """The flow ``name`` of ``workspace``, if any."""
        ws = self.workspaces.get(workspace)
        return ws.flows.get(name) if ws else None

    def flows_for(self, workspace: str, connection: str, event_type: str) -> list[Flow]:
        """Flows triggered by ``event_type`` from ``connection``."""
        ws = self.workspaces.get(workspace)
        if ws is None:
            return []
        return [f for f in ws.flows.values() if f.matches(connection, event_type)]

    def routes(self, workspace: str, connection: str, event_type: str) -> list[FlowRoute]:
        """Deliveries to create for an event (cached per event type)."""
        key = (workspace, connection, event_type)
        r = self._routes.get(key)
        if r is None:
            r = [
                FlowRoute(f.name, f.options.ordering == "record", f.options.priority)
                for f in self.flows_for(workspace, connection, event_type)
            ]
            self._routes[key] = r
        return r
