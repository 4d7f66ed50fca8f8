"""The HTTP face of the Odoo emulator: JSON-2 (19.0+) and JSON-RPC (``/jsonrpc``)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crossdock.emulators.kit import FaultMiddleware, Faults, WebhookSender, control_routes
from crossdock.emulators.odoo.orm import (
    MODEL_METHODS,
    SIGNATURES,
    STOCK_LOCATION,
    AccessDenied,
    NotFound,
    OdooDatabase,
    OdooError,
    UnprocessableEntity,
)

__all__ = ["OdooEmulator", "build_app"]

_NOT_FOUND_HTML = (
    "<!DOCTYPE html>\n<html lang=en><title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server.</p>\n"
)
MAX_LOG = 1000


class _ServerError(OdooError):
    def __init__(self, name: str, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.name = name
        self.status = status


class OdooEmulator:
    """The emulator's state: options, the database, injected faults and a request log."""

    def __init__(
        self,
        *,
        version: int,
        api_key: str,
        database: str,
        login: str,
        currency: str,
        latency: float,
        webhooks: WebhookSender,
        faults: Faults,
        webhook_url: str | None = None,
        webhook_secret: str = "",
    ) -> None:
        self.version = version
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.api_key = api_key
        self.database = database
        self.login = login
        self.currency = currency
        self.latency = latency
        self.webhooks = webhooks
        self.faults = faults
        self.requests: list[dict[str, Any]] = []
        self.db = self._new_db()

    def _new_db(self) -> OdooDatabase:
        db = OdooDatabase(currency=self.currency)
        db.tables["res.users"][2]["login"] = self.login
        return db

    def reset(self) -> None:
        """Forget every change: a freshly seeded database."""
        self.db = self._new_db()
        self.requests.clear()

    @property
    def uid(self) -> int:
        return 2

    def log(self, entry: dict[str, Any]) -> None:
        self.requests.append(entry)
        del self.requests[:-MAX_LOG]

    # -- what tests and the demo read ------------------------------------------------------

    def sale_orders(self) -> list[dict[str, Any]]:
        return [
            {
                "id": so["id"],
                "name": so["name"],
                "state": so["state"],
                "client_order_ref": so["client_order_ref"],
                "origin": so["origin"],
                "partner_id": so["partner_id"],
                "amount_total": so["amount_total"],
                "lines": len(so["order_line"]),
            }
            for so in self.db.tables["sale.order"].values()
        ]

    def invoices(self) -> list[dict[str, Any]]:
        return [
            {
                "id": m["id"],
                "name": m["name"],
                "state": m["state"],
                "origin": m["invoice_origin"],
                "ref": m["ref"],
                "partner_id": m["partner_id"],
                "amount": m["amount_total"],
            }
            for m in self.db.tables["account.move"].values()
            if m["move_type"] == "out_invoice"
        ]

    def partners(self) -> list[dict[str, Any]]:
        return [
            {"id": p["id"], "name": p["name"], "email": p["email"]}
            for p in self.db.tables["res.partner"].values()
        ]

    def quants(self) -> list[dict[str, Any]]:
        db = self.db
        out = []
        for q in db.tables["stock.quant"].values():
            prod = db.tables["product.product"][q["product_id"]]
            loc = db.tables["stock.location"][q["location_id"]]
            out.append(
                {
                    "id": q["id"],
                    "sku": prod["default_code"],
                    "location": loc["complete_name"],
                    "quantity": q["quantity"],
                    "reserved_quantity": q["reserved_quantity"],
                    "write_date": q["write_date"],
                }
            )
        return out

    def state(self) -> dict[str, Any]:
        invoices = self.invoices()
        orders = self.sale_orders()
        return {
            "version": self.version,
            "database": self.database,
            "partners": self.partners(),
            "sale_orders": orders,
            "invoices": invoices,
            "quants": self.quants(),
            "counts": {
                "partners": len(self.db.tables["res.partner"]),
                "sale_orders": len(orders),
                "confirmed_sale_orders": sum(1 for o in orders if o["state"] == "sale"),
                "invoices": len(invoices),
                "posted_invoices": sum(1 for i in invoices if i["state"] == "posted"),
                "json2_requests": sum(1 for r in self.requests if r["api"] == "json2"),
                "jsonrpc_requests": sum(1 for r in self.requests if r["api"] == "jsonrpc"),
            },
        }

    def set_stock(self, sku: str, quantity: float | None, reserved: float | None) -> dict[str, Any]:
        """Change a product's quant at WH/Stock (as a receipt or a count would)."""
        db = self.db
        pids = db.search_ids("product.product", [["default_code", "=", sku]])
        if not pids:
            raise NotFound(f"no product with internal reference {sku!r}")
        qids = db.search_ids(
            "stock.quant", [["product_id", "=", pids[0]], ["location_id", "=", STOCK_LOCATION]]
        )
        vals: dict[str, Any] = {}
        if quantity is not None:
            vals["quantity"] = quantity
        if reserved is not None:
            vals["reserved_quantity"] = reserved
        if qids:
            db.write("stock.quant", qids, vals)
            qid = qids[0]
        else:
            qid = db.create_one("stock.quant", {"product_id": pids[0], "location_id": 1, **vals})
        return next(q for q in self.quants() if q["id"] == qid)


# --- error shapes -------------------------------------------------------------------------


def _json2_error(exc: OdooError, context: Any) -> JSONResponse:
    http_like = exc.name.startswith("werkzeug.")
    body = {
        "name": exc.name,
        "message": exc.message,
        "arguments": [exc.message, exc.status] if http_like else [exc.message],
        "context": context if isinstance(context, dict) else {},
        "debug": f"Traceback (most recent call last):\n  (emulated)\n{exc.name}: {exc.message}\n",
    }
    return JSONResponse(body, exc.status)


def _rpc_error(rid: Any, exc: OdooError) -> JSONResponse:
    return JSONResponse(
        {
            "jsonrpc": "2.0",
            "id": rid,
            "error": {
                "code": 200,
                "message": "Odoo Server Error",
                "data": {
                    "name": exc.name,
                    "debug": f"Traceback (most recent call last):\n  (emulated)\n{exc.name}: "
                    f"{exc.message}\n",
                    "message": exc.message,
                    "arguments": [exc.message],
                    "context": {},
                },
            },
        }
    )


def _bind(method: str, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[int] | None, dict]:
    """execute_kw's positional ``args`` (ids first for record methods) -> ids, named."""
    params = SIGNATURES.get(method)
    if params is None:
        return None, dict(kwargs)
    ids: list[int] | None = None
    rest = list(args)
    if method not in MODEL_METHODS:
        first = rest.pop(0) if rest else []
        ids = [first] if isinstance(first, int) else list(first or [])
    if len(rest) > len(params):
        raise _ServerError(
            "builtins.TypeError",
            f"{method}() takes {len(params) + 1} positional arguments but {len(rest) + 1} "
            "were given",
        )
    named = dict(zip(params, rest, strict=False))
    for k, v in kwargs.items():
        if k in named:
            raise _ServerError(
                "builtins.TypeError", f"{method}() got multiple values for argument {k!r}"
            )
        named[k] = v
    return ids, named


# --- routes -------------------------------------------------------------------------------


def build_app(emu: OdooEmulator) -> Starlette:
    """The Starlette app around ``emu``."""

    async def pause() -> None:
        if emu.latency > 0:
            await asyncio.sleep(emu.latency)

    async def json2(request: Request) -> Response:
        if emu.version < 19:
            return HTMLResponse(_NOT_FOUND_HTML, 404)
        await pause()
        model = request.path_params["model"]
        method = request.path_params["method"]
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        dbh = request.headers.get("x-odoo-database")
        try:
            raw = await request.body()
            body = await request.json() if raw else {}
        except ValueError:
            body = None
        entry = {
            "api": "json2",
            "model": model,
            "method": method,
            "auth_scheme": scheme,
            "database_header": dbh,
            "content_type": request.headers.get("content-type"),
            "body": dict(body) if isinstance(body, dict) else body,
        }
        emu.log(entry)
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            key.strip().encode(), emu.api_key.encode()
        ):
            err = _ServerError("werkzeug.exceptions.Unauthorized", "Invalid apikey", 401)
            return _json2_error(err, {})
        if dbh and dbh != emu.database:
            return _json2_error(NotFound(f"database {dbh!r} not found"), {})  # [unconfirmed]
        if not isinstance(body, dict):
            err = _ServerError(
                "werkzeug.exceptions.BadRequest", "could not parse the body as json", 400
            )
            return _json2_error(err, {})
        context = body.pop("context", {})
        ids = body.pop("ids", None) or []
        try:
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise UnprocessableEntity("ids must be an array of integers")
            result = emu.db.call(model, method, ids, body)
        except OdooError as exc:
            return _json2_error(exc, context)
        except (TypeError, ValueError, KeyError) as exc:
            return _json2_error(_ServerError(f"builtins.{type(exc).__name__}", str(exc)), context)
        return JSONResponse(result)

    async def json2_other(request: Request) -> Response:
        if emu.version < 19:
            return HTMLResponse(_NOT_FOUND_HTML, 404)
        return _json2_error(NotFound("Did you mean POST /json/2/<model>/<method>?"), {})

    async def web_version(request: Request) -> Response:
        if emu.version < 19:
            return HTMLResponse(_NOT_FOUND_HTML, 404)
        return JSONResponse(
            {"version_info": [emu.version, 0, 0, "final", 0, ""], "version": f"{emu.version}.0"}
        )

    async def jsonrpc(request: Request) -> Response:
        await pause()
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _rpc_error(None, _ServerError("werkzeug.exceptions.BadRequest", "Invalid JSON"))
        rid = payload.get("id")
        params = payload.get("params") or {}
        service, method = params.get("service"), params.get("method")
        args = list(params.get("args") or [])
        entry: dict[str, Any] = {
            "api": "jsonrpc",
            "envelope": {k: payload.get(k) for k in ("jsonrpc", "method", "id")},
            "service": service,
            "method": method,
            "model": args[3] if service == "object" and len(args) > 3 else None,
            "model_method": args[4] if service == "object" and len(args) > 4 else None,
            "args_count": len(args),
        }
        emu.log(entry)
        try:
            result = dispatch(service, method, args)
            return JSONResponse({"jsonrpc": "2.0", "id": rid, "result": result})
        except OdooError as exc:
            return _rpc_error(rid, exc)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            return _rpc_error(rid, _ServerError(f"builtins.{type(exc).__name__}", str(exc)))

    def check_db(name: Any) -> None:
        if name != emu.database:
            raise _ServerError(
                "psycopg2.OperationalError",
                f'connection to server failed: FATAL:  database "{name}" does not exist',
            )

    def dispatch(service: Any, method: Any, args: list[Any]) -> Any:
        if service == "common":
            if method == "version":
                return {
                    "server_version": f"{emu.version}.0",
                    "server_version_info": [emu.version, 0, 0, "final", 0, ""],
                    "server_serie": f"{emu.version}.0",
                    "protocol_version": 1,
                }
            if method in ("login", "authenticate"):
                db, login, password = args[:3]
                check_db(db)
                ok = login == emu.login and hmac.compare_digest(
                    str(password).encode(), emu.api_key.encode()
                )
                return emu.uid if ok else False
            raise NotFound(f"Method not found: {method}")
        if service == "object":
            if method not in ("execute", "execute_kw"):
                raise NotFound(f"Method not found: {method}")
            db, uid, password, model, meth = args[:5]
            check_db(db)
            if uid != emu.uid or not hmac.compare_digest(
                str(password).encode(), emu.api_key.encode()
            ):
                raise AccessDenied("Access Denied")
            if method == "execute_kw":
                pos = list(args[5]) if len(args) > 5 else []
                kw = dict(args[6]) if len(args) > 6 and args[6] else {}
            else:
                pos, kw = list(args[5:]), {}
            ids, named = _bind(str(meth), pos, kw)
            return emu.db.call(str(model), str(meth), ids, named)
        raise NotFound(f"No such service: {service}")

    async def stock_route(request: Request) -> Response:
        data = await request.json()
        try:
            quant = emu.set_stock(
                str(data["sku"]),
                float(data["quantity"]) if data.get("quantity") is not None else None,
                float(data["reserved"]) if data.get("reserved") is not None else None,
            )
        except (KeyError, OdooError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(quant)

    routes = [
        Route("/json/2/{model}/{method}", json2, methods=["POST"]),
        Route("/json/2", json2_other, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Route(
            "/json/2/{rest:path}", json2_other, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]
        ),
        Route("/web/version", web_version, methods=["GET"]),
        Route("/jsonrpc", jsonrpc, methods=["POST"]),
        Route("/_emulator/stock", stock_route, methods=["POST"]),
        *control_routes(emu.faults, emu.state, emu.reset, emu.webhooks),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(FaultMiddleware, faults=emu.faults)])
    app.state.emulator = emu
    return app
