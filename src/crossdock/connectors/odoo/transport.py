"""One way for actions and streams to call Odoo, over either API.

``await transport.call("sale.order", "search_read", domain=[...], fields=[...])`` — named
arguments as JSON-2 takes them (``ids`` for methods on records, ``context`` optional).

- :class:`Json2Transport` — ``POST /json/2/<model>/<method>``, ``Authorization: bearer``,
  ``X-Odoo-Database``, the named arguments as the JSON body (Odoo 19+).
- :class:`JsonRpcTransport` — ``POST /jsonrpc`` ``execute_kw(db, uid, password, model,
  method, args, kwargs)`` after ``common.authenticate`` (deprecated since 19.0).
- :class:`AutoTransport` — JSON-2 unless the server answers 404 without an Odoo JSON-2
  error body on its first call (no ``/json/2`` route: Odoo <= 18); remembers the choice.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Protocol

from crossdock.connectors.odoo.classify import classify_json2, classify_jsonrpc
from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.client import VendorClient
from crossdock.sdk.errors import VendorError

__all__ = ["AutoTransport", "Json2Transport", "JsonRpcTransport", "Transport"]

# The first positional parameter of the ORM methods we call, for execute_kw's ``args``.
_FIRST_ARG = {
    "search": "domain",
    "search_read": "domain",
    "search_count": "domain",
    "create": "vals_list",
    "write": "vals",
    "read": "fields",
}


class Transport(Protocol):
    """Calls ``model.method`` with named arguments; returns the method's value."""

    @property
    def api(self) -> str:
        """``json2``, ``jsonrpc`` (or ``auto`` before a choice is made)."""
        ...

    async def call(self, model: str, method: str, **named: Any) -> Any:
        """Call ``model.method(**named)`` (``ids`` selects the records)."""
        ...


class Json2Transport:
    """The External JSON-2 API (Odoo 19+)."""

    api = "json2"

    def __init__(self, client: VendorClient, database: str, api_key: str) -> None:
        self.client = client
        self.database = database
        self._api_key = api_key

    def headers(self) -> dict[str, str]:
        out = {"Authorization": f"bearer {self._api_key}"}
        if self.database:
            out["X-Odoo-Database"] = self.database
        return out

    async def call(self, model: str, method: str, **named: Any) -> Any:
        resp = await self.client.post(
            f"/json/2/{model}/{method}",
            json=named,
            headers=self.headers(),
            endpoint="/json/2",
            classify=classify_json2,
        )
        return resp.body

    async def probe(self) -> bool | None:
        """Whether the server has JSON-2: True, False (404 without a JSON-2 error body),
        or raise for any other failure (bad key, outage)."""
        resp = await self.client.post(
            "/json/2/res.users/context_get",
            json={},
            headers=self.headers(),
            endpoint="/json/2",
            classify=classify_json2,
            raise_for_outcome=False,
        )
        if 200 <= resp.status < 300:
            return True
        odoo_error = isinstance(resp.body, dict) and "name" in resp.body
        if resp.status == 404 and not odoo_error:
            return False
        raise VendorError(
            classify_json2(resp.response, resp.body, self.client.connection), resp.status, resp.body
        )


class JsonRpcTransport:
    """The JSON-RPC ``execute_kw`` API (deprecated since 19.0; removal planned for 22)."""

    api = "jsonrpc"

    def __init__(self, client: VendorClient, database: str, login: str, password: str) -> None:
        self.client = client
        self.database = database
        self.login = login
        self._password = password
        self.uid: int | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def rpc(self, service: str, method: str, args: list[Any]) -> Any:
        """One JSON-RPC ``call`` of ``service.method(*args)``; its ``result``."""
        envelope = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": next(self._ids),
        }
        resp = await self.client.post(
            "/jsonrpc", json=envelope, endpoint="/jsonrpc", classify=classify_jsonrpc
        )
        return resp.body.get("result") if isinstance(resp.body, dict) else None

    async def authenticate(self) -> int:
        """The API user's id (``common.authenticate``), asked once."""
        if self.uid is not None:
            return self.uid
        async with self._lock:
            if self.uid is None:
                uid = await self.rpc(
                    "common", "authenticate", [self.database, self.login, self._password, {}]
                )
                if not isinstance(uid, int) or isinstance(uid, bool):
                    where = f"'{self.client.connection}'"
                    raise VendorError(
                        Classified(
                            Outcome.PERMANENT,
                            "auth",
                            f"Odoo {where} refused the login '{self.login}' on database "
                            f"'{self.database}' (wrong login, API key or database).",
                            f"Check the login, database and API key of connection {where}; "
                            "the API key is used as the password.",
                        ),
                        200,
                        None,
                    )
                self.uid = uid
        return self.uid

    async def call(self, model: str, method: str, **named: Any) -> Any:
        uid = await self.authenticate()
        ids = named.pop("ids", None)
        args: list[Any] = [] if ids is None else [list(ids)]
        first = _FIRST_ARG.get(method)
        if first is not None and first in named:
            args.append(named.pop(first))
        try:
            return await self.rpc(
                "object",
                "execute_kw",
                [self.database, uid, self._password, model, method, args, named],
            )
        except VendorError as err:
            if err.classified.category == "auth":
                self.uid = None  # the password may have changed: authenticate again next time
            raise


class AutoTransport:
    """JSON-2 when the server has it, JSON-RPC otherwise (decided once, remembered)."""

    def __init__(self, json2: Json2Transport, jsonrpc: JsonRpcTransport) -> None:
        self.json2 = json2
        self.jsonrpc = jsonrpc
        self.chosen: Transport | None = None
        self._lock = asyncio.Lock()

    @property
    def api(self) -> str:
        return self.chosen.api if self.chosen is not None else "auto"

    async def resolve(self) -> Transport:
        """The transport this server speaks (probing ``/json/2`` the first time)."""
        if self.chosen is None:
            async with self._lock:
                if self.chosen is None:
                    has_json2 = await self.json2.probe()
                    self.chosen = self.json2 if has_json2 else self.jsonrpc
        return self.chosen

    async def call(self, model: str, method: str, **named: Any) -> Any:
        transport = await self.resolve()
        return await transport.call(model, method, **named)
