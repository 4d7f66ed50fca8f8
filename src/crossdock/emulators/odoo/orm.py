"""The emulated Odoo database: a few models, the generic ORM methods and domains.

Records are plain dicts keyed by id. Reads render fields as Odoo does over RPC: a
many2one is ``[id, display_name]`` or ``False``, an x2many a list of ids, an empty value
``False``. Writes take x2many *commands* (``[0, 0, vals]`` create, ``[4, id]`` link,
``[6, 0, ids]`` replace, ``[5]`` clear). Errors are the exception classes below; the HTTP
layer (``app.py``) turns them into JSON-2 or JSON-RPC error shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crossdock.emulators.catalog import CATALOG

__all__ = [
    "SCHEMA",
    "AccessDenied",
    "MissingError",
    "NotFound",
    "OdooDatabase",
    "OdooError",
    "UnprocessableEntity",
    "UserError",
    "ValidationError",
]

STOCK_LOCATION = "WH/Stock"
ODOO_TIME = "%Y-%m-%d %H:%M:%S"


# --- errors -------------------------------------------------------------------------------


class OdooError(Exception):
    """An error the emulated server reports; ``name`` is the Python class Odoo names."""

    name = "builtins.Exception"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(OdooError):
    name = "odoo.exceptions.UserError"
    status = 422  # [unconfirmed] UserError.http_status in Odoo 19


class ValidationError(UserError):
    name = "odoo.exceptions.ValidationError"


class MissingError(UserError):
    name = "odoo.exceptions.MissingError"
    status = 404


class AccessDenied(OdooError):
    name = "odoo.exceptions.AccessDenied"
    status = 403


class NotFound(OdooError):
    name = "werkzeug.exceptions.NotFound"
    status = 404


class UnprocessableEntity(OdooError):
    name = "werkzeug.exceptions.UnprocessableEntity"
    status = 422


class InvalidField(OdooError):
    name = "builtins.ValueError"
    status = 500


# --- schema -------------------------------------------------------------------------------

# kind: char | int | float | bool | date | datetime | m2o:<model> | o2m:<model>:<inverse>
#       | m2m:<model>
SCHEMA: dict[str, dict[str, str]] = {
    "res.users": {"name": "char", "login": "char"},
    "res.company": {"name": "char", "currency_id": "m2o:res.currency"},
    "res.currency": {"name": "char"},
    "res.partner": {
        "name": "char",
        "email": "char",
        "phone": "char",
        "street": "char",
        "street2": "char",
        "city": "char",
        "zip": "char",
        "company_name": "char",
        "is_company": "bool",
        "active": "bool",
        "comment": "char",
    },
    "product.product": {
        "name": "char",
        "default_code": "char",
        "list_price": "float",
        "type": "char",
        "active": "bool",
    },
    "stock.location": {"name": "char", "complete_name": "char", "usage": "char"},
    "stock.quant": {
        "product_id": "m2o:product.product",
        "location_id": "m2o:stock.location",
        "quantity": "float",
        "reserved_quantity": "float",
    },
    "account.tax": {"name": "char", "amount": "float", "type_tax_use": "char"},
    "account.journal": {"name": "char", "code": "char", "type": "char"},
    "sale.order": {
        "name": "char",
        "partner_id": "m2o:res.partner",
        "state": "char",
        "client_order_ref": "char",
        "origin": "char",
        "note": "char",
        "order_line": "o2m:sale.order.line:order_id",
        "amount_untaxed": "float",
        "amount_tax": "float",
        "amount_total": "float",
        "currency_id": "m2o:res.currency",
        "company_id": "m2o:res.company",
        "pricelist_id": "int",
        "date_order": "datetime",
        "invoice_ids": "m2m:account.move",
    },
    "sale.order.line": {
        "order_id": "m2o:sale.order",
        "product_id": "m2o:product.product",
        "name": "char",
        "product_uom_qty": "float",
        "price_unit": "float",
        "price_subtotal": "float",
        "price_tax": "float",
        "tax_id": "m2m:account.tax",  # Odoo <= 18
        "tax_ids": "m2m:account.tax",  # Odoo 19 [unconfirmed rename]
        "qty_invoiced": "float",
    },
    "account.move": {
        "name": "char",
        "move_type": "char",
        "partner_id": "m2o:res.partner",
        "invoice_origin": "char",
        "ref": "char",
        "state": "char",
        "payment_state": "char",
        "invoice_line_ids": "o2m:account.move.line:move_id",
        "amount_untaxed": "float",
        "amount_tax": "float",
        "amount_total": "float",
        "invoice_date": "date",
        "invoice_date_due": "date",
        "currency_id": "m2o:res.currency",
        "company_id": "m2o:res.company",
        "journal_id": "m2o:account.journal",
    },
    "account.move.line": {
        "move_id": "m2o:account.move",
        "product_id": "m2o:product.product",
        "name": "char",
        "quantity": "float",
        "price_unit": "float",
        "price_subtotal": "float",
        "tax_ids": "m2m:account.tax",
        "sale_line_ids": "m2m:sale.order.line",
    },
}
_MAGIC = {"id": "int", "display_name": "char", "create_date": "datetime", "write_date": "datetime"}

# Positional parameters of the methods, for JSON-RPC's execute_kw ``args`` (after the ids
# of record methods) and for binding named JSON-2 arguments.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "search": ("domain", "offset", "limit", "order"),
    "search_read": ("domain", "fields", "offset", "limit", "order"),
    "search_count": ("domain", "limit"),
    "read": ("fields", "load"),
    "create": ("vals_list",),
    "write": ("vals",),
    "action_confirm": (),
    "action_post": (),
    "context_get": (),
}
MODEL_METHODS = {"search", "search_read", "search_count", "create", "context_get"}
"""``@api.model`` methods: called without ids."""


def _fmt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(ODOO_TIME)


# --- domains ------------------------------------------------------------------------------


def _like(pattern: str, value: str, *, ci: bool, whole: bool) -> bool:
    if not whole:
        pattern = f"%{pattern}%"
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if ci else 0
    return re.fullmatch(rx, value, flags | re.DOTALL) is not None


def _compare(value: Any, op: str, arg: Any) -> bool:
    if isinstance(value, list) and op not in ("in", "not in"):
        # x2many or many2one as [id, name]: true if any element matches
        return any(_compare(v, op, arg) for v in value) if value else _compare(False, op, arg)
    if op in ("=", "=="):
        return bool(value == arg or (arg is False and value in (None, False, "")))
    if op in ("!=", "<>"):
        return not _compare(value, "=", arg)
    if op == "in":
        vals = value if isinstance(value, list) else [value]
        return any(v in (arg or []) for v in vals) or (
            False in (arg or []) and value in (None, False, [])
        )
    if op == "not in":
        return not _compare(value, "in", arg)
    if op in ("like", "ilike", "=like", "=ilike", "not like", "not ilike"):
        if value in (None, False):
            return op.startswith("not")
        hit = _like(str(arg), str(value), ci="ilike" in op, whole=op.startswith("="))
        return not hit if op.startswith("not") else hit
    if value in (None, False):
        return False
    try:
        if op == ">":
            return bool(value > arg)
        if op == ">=":
            return bool(value >= arg)
        if op == "<":
            return bool(value < arg)
        if op == "<=":
            return bool(value <= arg)
    except TypeError:
        return False
    raise ValueError(f"Invalid domain operator {op!r}")


# --- the database -------------------------------------------------------------------------


class OdooDatabase:
    """Every record of one emulated Odoo database."""

    def __init__(self, *, currency: str = "EUR", clock: Callable[[], datetime] | None = None):
        self.currency = currency
        self._wall = clock or (lambda: datetime.now(UTC))
        self._last = datetime(1970, 1, 1, tzinfo=UTC)
        self.tables: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in SCHEMA}
        self._ids: dict[str, int] = dict.fromkeys(SCHEMA, 0)
        self._seq: dict[str, int] = {}
        self.seed()

    # -- time: Odoo stores write_date to the second; keep every write strictly later so
    #    a poller's cursor always sees a change as new.
    def now(self) -> datetime:
        t = self._wall().replace(microsecond=0)
        if t <= self._last:
            t = self._last + timedelta(seconds=1)
        self._last = t
        return t

    def seed(self) -> None:
        """The sandbox company, catalogue and stock (all written at one instant)."""
        t = _fmt(self.now())
        cur = self._insert("res.currency", {"name": self.currency}, t)
        self._insert("res.company", {"name": "Crossdock Sandbox Co.", "currency_id": cur}, t)
        self._insert("res.users", {"name": "Administrator", "login": "admin"}, t)
        self._insert("res.users", {"name": "Crossdock Bot", "login": "crossdock"}, t)
        journal = {"name": "Customer Invoices", "code": "INV", "type": "sale"}
        self._insert("account.journal", journal, t)
        self._insert("account.tax", {"name": "20%", "amount": 20.0, "type_tax_use": "sale"}, t)
        self._insert("account.tax", {"name": "10%", "amount": 10.0, "type_tax_use": "sale"}, t)
        location = {"name": "Stock", "complete_name": STOCK_LOCATION, "usage": "internal"}
        loc = self._insert("stock.location", location, t)
        for item in CATALOG:
            pid = self._insert(
                "product.product",
                {
                    "name": item.title,
                    "default_code": item.sku,
                    "list_price": float(item.price),
                    "type": "consu",
                    "active": True,
                },
                t,
            )
            self._insert(
                "stock.quant",
                {
                    "product_id": pid,
                    "location_id": loc,
                    "quantity": float(item.stock),
                    "reserved_quantity": 0.0,
                },
                t,
            )

    # -- low level -------------------------------------------------------------------------

    def table(self, model: str) -> dict[int, dict[str, Any]]:
        if model not in self.tables:
            raise NotFound(f"the model {model!r} does not exist")
        return self.tables[model]

    def kind(self, model: str, field: str) -> str:
        kind = SCHEMA[model].get(field) or _MAGIC.get(field)
        if kind is None:
            raise InvalidField(f"Invalid field {field!r} on model {model!r}")
        return kind

    def _insert(self, model: str, vals: Mapping[str, Any], stamp: str | None = None) -> int:
        self._ids[model] += 1
        rid = self._ids[model]
        stamp = stamp or _fmt(self.now())
        rec: dict[str, Any] = {"id": rid, "create_date": stamp, "write_date": stamp}
        for field, kind in SCHEMA[model].items():
            rec[field] = [] if kind.startswith(("o2m", "m2m")) else None
        if "active" in rec:
            rec["active"] = True
        rec.update(vals)
        self.tables[model][rid] = rec
        return rid

    def next_name(self, key: str, fmt: str) -> str:
        self._seq[key] = self._seq.get(key, 0) + 1
        return fmt.format(n=self._seq[key])

    def browse(self, model: str, ids: Iterable[int]) -> list[dict[str, Any]]:
        table = self.table(model)
        out = []
        for i in ids:
            if i not in table:
                raise MissingError(
                    f"Record does not exist or has been deleted.\n(Record: {model}({i},), User: 2)"
                )
            out.append(table[i])
        return out

    def display_name(self, model: str, rec: Mapping[str, Any]) -> str:
        if model == "product.product" and rec.get("default_code"):
            return f"[{rec['default_code']}] {rec['name']}"
        if model == "stock.location":
            return str(rec.get("complete_name") or rec.get("name"))
        if model == "stock.quant":
            return f"{rec['id']}"
        return str(rec.get("name") or f"{model},{rec['id']}")

    def value(self, model: str, rec: Mapping[str, Any], path: str) -> Any:
        """A field's raw value, following ``a.b`` through many2one fields."""
        head, _, rest = path.partition(".")
        if head == "display_name":
            raw: Any = self.display_name(model, rec)
        else:
            kind = self.kind(model, head)
            raw = rec.get(head)
            if rest:
                if not kind.startswith(("m2o:", "o2m:", "m2m:")):
                    raise InvalidField(f"Invalid field {path!r} on model {model!r}")
                target = kind.split(":")[1]
                ids = [raw] if kind.startswith("m2o:") else list(raw or [])
                vals = [
                    self.value(target, r, rest)
                    for r in (self.tables[target].get(i) for i in ids if i)
                    if r is not None
                ]
                return vals[0] if kind.startswith("m2o:") and vals else (vals or False)
        return raw

    # -- domains ---------------------------------------------------------------------------

    def _leaf(self, model: str, rec: Mapping[str, Any], leaf: Any) -> bool:
        if not isinstance(leaf, list | tuple) or len(leaf) != 3:
            raise ValueError(f"Invalid leaf {leaf!r}")
        field, op, arg = leaf
        if field in (0, 1) and op == "=":  # TRUE_LEAF / FALSE_LEAF
            return bool(field == arg)
        value = self.value(model, rec, str(field))
        kind = self.kind(model, str(field).split(".")[0])
        if kind.startswith("m2o:") and "." not in str(field) and isinstance(arg, str):
            # a many2one compared with text matches on the record's display name
            target = kind[4:]
            value = self.display_name(target, self.tables[target][value]) if value else False
        return _compare(value, str(op), arg)

    def match(self, model: str, rec: Mapping[str, Any], domain: list[Any]) -> bool:
        """Whether ``rec`` satisfies a domain in Odoo's prefix notation."""
        items = list(domain or [])

        def parse(i: int) -> tuple[bool, int]:
            tok = items[i]
            if tok == "!":
                v, j = parse(i + 1)
                return (not v), j
            if tok in ("&", "|"):
                a, j = parse(i + 1)
                b, k = parse(j)
                return (a and b) if tok == "&" else (a or b), k
            return self._leaf(model, rec, tok), i + 1

        i, result = 0, True
        while i < len(items):
            v, i = parse(i)
            result = result and v
        return result

    def search_ids(
        self,
        model: str,
        domain: list[Any] | None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[int]:
        recs = [
            r
            for r in self.table(model).values()
            if self.match(model, r, list(domain or []))
            and ("active" not in r or r["active"] or _mentions(domain, "active"))
        ]
        for part in reversed([p.strip() for p in (order or "id").split(",") if p.strip()]):
            field, _, direction = part.partition(" ")
            self.kind(model, field)

            def key(r: dict[str, Any], f: str = field) -> tuple[bool, Any]:
                return (r.get(f) is None, r.get(f) if r.get(f) is not None else 0)

            recs.sort(key=key, reverse=direction.strip().lower() == "desc")
        ids = [r["id"] for r in recs]
        end = None if not limit else int(offset or 0) + int(limit)
        return ids[int(offset or 0) : end]

    # -- reading ---------------------------------------------------------------------------

    def render(
        self, model: str, rec: Mapping[str, Any], fields: list[str] | None
    ) -> dict[str, Any]:
        names = fields or [*SCHEMA[model], "display_name", "create_date", "write_date"]
        out: dict[str, Any] = {"id": rec["id"]}
        for f in names:
            if f == "id":
                continue
            kind = self.kind(model, f)
            raw: Any = self.display_name(model, rec) if f == "display_name" else rec.get(f)
            if kind.startswith("m2o:"):
                target = kind[4:]
                tgt = self.tables[target].get(int(raw)) if raw else None
                out[f] = [raw, self.display_name(target, tgt)] if tgt else False
            elif kind.startswith(("o2m:", "m2m:")):
                out[f] = list(raw or [])
            elif raw is None or raw == "":
                out[f] = False if kind != "float" else 0.0
            else:
                out[f] = raw
        return out

    # -- writing ---------------------------------------------------------------------------

    def _apply(self, model: str, rec: dict[str, Any], vals: Mapping[str, Any]) -> None:
        if not isinstance(vals, Mapping):
            raise UnprocessableEntity(f"values must be an object, got {type(vals).__name__}")
        for field, val in vals.items():
            kind = self.kind(model, field)
            if field in _MAGIC:
                continue
            if kind.startswith("m2o:"):
                target = kind[4:]
                if val in (False, None, 0):
                    rec[field] = None
                    continue
                if not isinstance(val, int) or val not in self.tables[target]:
                    raise MissingError(
                        f"Record does not exist or has been deleted.\n(Record: {target}({val},))"
                    )
                rec[field] = val
            elif kind.startswith("o2m:"):
                _, target, inverse = kind.split(":")
                rec[field] = self._commands(target, rec[field], val, {inverse: rec["id"]})
            elif kind.startswith("m2m:"):
                rec[field] = self._commands(kind[4:], rec[field], val, None)
            elif kind == "float":
                rec[field] = float(val or 0.0)
            elif kind == "int":
                rec[field] = int(val) if val not in (False, None) else None
            else:
                rec[field] = val if val is not False else None

    def _commands(
        self, target: str, current: list[int], cmds: Any, inverse: dict[str, int] | None
    ) -> list[int]:
        ids = list(current or [])
        if not isinstance(cmds, list):
            raise UnprocessableEntity(f"x2many commands must be a list, got {cmds!r}")
        for cmd in cmds:
            if isinstance(cmd, int):  # a bare id list (accepted by Odoo for m2m)
                ids.append(cmd)
                continue
            if not isinstance(cmd, list | tuple) or not cmd:
                raise UnprocessableEntity(f"invalid x2many command {cmd!r}")
            code = cmd[0]
            if code == 0:
                vals = dict(cmd[2] if len(cmd) > 2 else {})
                vals.update(inverse or {})
                ids.append(self.create_one(target, vals))
            elif code == 4:
                ids.append(int(cmd[1]))
            elif code == 5:
                ids = []
            elif code == 6:
                ids = [int(i) for i in cmd[2]]
            elif code in (2, 3):
                ids = [i for i in ids if i != cmd[1]]
            else:
                raise UnprocessableEntity(f"unsupported x2many command {code!r}")
        return ids

    def create_one(self, model: str, vals: Mapping[str, Any]) -> int:
        vals = dict(vals)
        if model == "res.partner" and not vals.get("name") and not vals.get("email"):
            raise ValidationError("Contacts require a name")
        if model == "sale.order":
            if not vals.get("partner_id"):
                raise ValidationError(
                    "The operation cannot be completed:\n- Create/update: a mandatory field is "
                    "not set.\n- Model: Sales Order (sale.order)\n- Field: Customer (partner_id)"
                )
            vals.setdefault("state", "draft")
            vals.setdefault("name", self.next_name("sale.order", "S{n:05d}"))
            vals.setdefault("currency_id", 1)
            vals.setdefault("company_id", 1)
            vals.setdefault("date_order", _fmt(self.now()))
        if model == "account.move":
            vals.setdefault("move_type", "entry")
            vals.setdefault("state", "draft")
            vals.setdefault("name", "/")
            vals.setdefault("payment_state", "not_paid")
            vals.setdefault("currency_id", 1)
            vals.setdefault("company_id", 1)
            vals.setdefault("journal_id", 1)
            if vals["move_type"] == "out_invoice" and not vals.get("partner_id"):
                raise ValidationError("An invoice needs a customer (partner_id).")
        if model in ("sale.order.line", "account.move.line"):
            if vals.get("product_id") and not vals.get("name"):
                prod = self.tables["product.product"].get(vals["product_id"])
                vals["name"] = self.display_name("product.product", prod) if prod else ""
            if model == "sale.order.line" and "price_unit" not in vals and vals.get("product_id"):
                prod = self.tables["product.product"].get(vals["product_id"])
                vals["price_unit"] = prod["list_price"] if prod else 0.0
        deferred = {k: v for k, v in vals.items() if self.kind(model, k).startswith("o2m:")}
        plain = {k: v for k, v in vals.items() if k not in deferred}
        rid = self._insert(model, {})
        rec = self.tables[model][rid]
        try:
            self._apply(model, rec, plain)
            self._apply(model, rec, deferred)
        except OdooError:
            del self.tables[model][rid]
            raise
        self._recompute(model, rec)
        return rid

    def write(self, model: str, ids: list[int], vals: Mapping[str, Any]) -> bool:
        for rec in self.browse(model, ids):
            self._apply(model, rec, vals)
            rec["write_date"] = _fmt(self.now())
            self._recompute(model, rec)
        return True

    def _recompute(self, model: str, rec: dict[str, Any]) -> None:
        if model in ("sale.order.line", "account.move.line"):
            qty = rec.get("product_uom_qty" if model == "sale.order.line" else "quantity") or 0
            sub = round(float(qty) * float(rec.get("price_unit") or 0.0), 2)
            rec["price_subtotal"] = sub
            if model == "sale.order.line":
                taxes = rec.get("tax_ids") or rec.get("tax_id") or []
                rec["tax_id"] = rec["tax_ids"] = list(taxes)
                rec["price_tax"] = self._tax(sub, taxes)
        if model in ("sale.order", "account.move"):
            lines_field = "order_line" if model == "sale.order" else "invoice_line_ids"
            line_model = "sale.order.line" if model == "sale.order" else "account.move.line"
            untaxed = tax = 0.0
            for line in self.browse(line_model, rec.get(lines_field) or []):
                untaxed += line["price_subtotal"]
                tax += self._tax(line["price_subtotal"], line.get("tax_ids") or [])
            rec["amount_untaxed"] = round(untaxed, 2)
            rec["amount_tax"] = round(tax, 2)
            rec["amount_total"] = round(untaxed + tax, 2)

    def _tax(self, base: float, tax_ids: list[int]) -> float:
        taxes = self.tables["account.tax"]
        rates = [taxes[t]["amount"] for t in tax_ids if t in taxes]
        return round(sum(base * r / 100.0 for r in rates), 2)

    # -- business methods ------------------------------------------------------------------

    def action_confirm(self, ids: list[int]) -> bool:
        orders = self.browse("sale.order", ids)
        for so in orders:
            if so["state"] not in ("draft", "sent"):
                raise UserError(
                    f"The following orders are not in a state requiring confirmation: {so['name']}"
                )
            if not so["order_line"]:
                raise UserError("There are no order lines to confirm.")
        for so in orders:
            so["state"] = "sale"
            so["write_date"] = _fmt(self.now())
        return True

    def action_post(self, ids: list[int]) -> bool:
        moves = self.browse("account.move", ids)
        for move in moves:
            if move["state"] != "draft":
                raise UserError("Only draft journal entries can be posted.")
            if not move["invoice_line_ids"]:
                raise UserError("You need to add a line before posting.")
        for move in moves:
            today = self.now().date()
            move["state"] = "posted"
            if move["name"] in (None, "/"):
                key = f"INV/{today.year}"
                move["name"] = self.next_name(key, key + "/{n:05d}")
            move["invoice_date"] = move.get("invoice_date") or today.isoformat()
            move["invoice_date_due"] = (
                move.get("invoice_date_due")
                or (date.fromisoformat(move["invoice_date"]) + timedelta(days=30)).isoformat()
            )
            move["write_date"] = _fmt(self.now())
            for line in self.browse("account.move.line", move["invoice_line_ids"]):
                for sol in self.browse("sale.order.line", line.get("sale_line_ids") or []):
                    sol["qty_invoiced"] = (sol.get("qty_invoiced") or 0.0) + line["quantity"]
                    order = self.tables["sale.order"][sol["order_id"]]
                    if move["id"] not in order["invoice_ids"]:
                        order["invoice_ids"].append(move["id"])
        return False

    # -- dispatch --------------------------------------------------------------------------

    def call(self, model: str, method: str, ids: list[int] | None, kw: dict[str, Any]) -> Any:
        """Run ``model.method`` on ``ids`` with named arguments ``kw``."""
        self.table(model)
        known = SIGNATURES.get(method)
        if (
            known is None
            or (method == "action_confirm" and model != "sale.order")
            or (method == "action_post" and model != "account.move")
            or (method == "context_get" and model != "res.users")
        ):
            raise NotFound(f"The method {method!r} does not exist on the model {model!r}")
        kw = {k: v for k, v in kw.items() if k != "context"}
        unknown = set(kw) - set(known)
        if unknown:
            raise UnprocessableEntity(
                f"{method}() got an unexpected keyword argument {sorted(unknown)[0]!r}"
            )
        if method in MODEL_METHODS and ids:
            raise UnprocessableEntity(f"cannot call {model}.{method} with ids")
        ids = [int(i) for i in (ids or [])]
        if method == "context_get":
            return {"lang": "en_US", "tz": "Europe/Brussels", "uid": 2}
        if method == "search":
            return self.search_ids(
                model, kw.get("domain"), kw.get("offset", 0), kw.get("limit"), kw.get("order")
            )
        if method == "search_count":
            return len(self.search_ids(model, kw.get("domain"), 0, kw.get("limit")))
        if method == "search_read":
            found = self.search_ids(
                model, kw.get("domain"), kw.get("offset", 0), kw.get("limit"), kw.get("order")
            )
            return [self.render(model, r, kw.get("fields")) for r in self.browse(model, found)]
        if method == "read":
            return [self.render(model, r, kw.get("fields")) for r in self.browse(model, ids)]
        if method == "create":
            if "vals_list" not in kw:
                raise UnprocessableEntity(
                    "create() missing 1 required positional argument: 'vals_list'"
                )
            vals_list = kw["vals_list"]
            if isinstance(vals_list, Mapping):
                return self.create_one(model, vals_list)
            return [self.create_one(model, v) for v in vals_list]
        if method == "write":
            return self.write(model, ids, kw.get("vals") or {})
        if method == "action_confirm":
            return self.action_confirm(ids)
        return self.action_post(ids)


def _mentions(domain: list[Any] | None, field: str) -> bool:
    return any(isinstance(t, list | tuple) and len(t) == 3 and t[0] == field for t in domain or [])
