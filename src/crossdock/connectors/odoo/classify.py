"""Odoo's answers -> outcomes, for both APIs.

- JSON-2: real HTTP statuses with ``{name, message, arguments, context, debug}``
  (401 "Invalid apikey", 404 unknown model/method/record, 422 arguments or a
  ``UserError``/``ValidationError``, 5xx server errors).
- JSON-RPC: HTTP 200 with ``{"error": {"code": 200, "message": "Odoo Server Error",
  "data": {"name": "odoo.exceptions.ValidationError", "message": ...}}}``.

Either way the Python exception ``name`` decides the outcome.
"""

from __future__ import annotations

from typing import Any

import httpx

from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.client import default_classify

__all__ = ["classify_json2", "classify_jsonrpc", "from_exception"]

_RETRY_NAMES = ("SerializationFailure", "LockNotAvailable", "TransactionRollbackError")


def _short(message: str) -> str:
    text = " ".join(str(message).split())
    return text[:400]


def from_exception(
    name: str, message: str, connection: str, status: int | None = None
) -> Classified | None:
    """The outcome for an Odoo exception ``name`` (None: let the HTTP status decide)."""
    where = f"'{connection}'"
    msg = _short(message)
    short = name.rsplit(".", 1)[-1]
    if short == "AccessDenied" or (short == "Unauthorized" and status in (None, 401)):
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"Odoo {where} refused our credentials ({msg or 'Access Denied'}).",
            "Create a new API key in Odoo (Preferences > Account Security > New API Key), "
            f"check the login and database of connection {where}, then retry.",
        )
    if short == "AccessError":
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"Odoo's API user on {where} is not allowed to do this: {msg}",
            "Give the API user the Sales and Invoicing rights in Odoo, then retry.",
        )
    if short in ("ValidationError", "UserError", "RedirectWarning"):
        return Classified(
            Outcome.PERMANENT,
            "validation",
            f"Odoo {where} refused the data: {msg}",
            "Correct the record (or the data in Odoo it refers to), then retry the delivery.",
        )
    if short == "MissingError":
        return Classified(
            Outcome.PERMANENT,
            "not_found",
            f"A record Odoo {where} was asked about no longer exists: {msg}",
            "Check the cross-reference of this record (it may have been deleted in Odoo), "
            "then retry.",
        )
    if short == "OperationalError" and "does not exist" in msg:
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"Odoo {where} has no such database: {msg}",
            f"Correct the database name of connection {where}, then retry.",
        )
    if any(n in name for n in _RETRY_NAMES):
        return Classified(
            Outcome.RETRYABLE,
            "unavailable",
            f"Odoo {where} was busy with a concurrent update ({short}).",
            "Nothing to do: Crossdock tries again.",
        )
    return None


def classify_json2(response: httpx.Response, body: Any, connection: str) -> Classified:
    """A JSON-2 answer: the status, refined by the exception name in the error body."""
    status = response.status_code
    if 200 <= status < 300:
        return Classified(Outcome.SUCCESS, "ok", "delivered", "")
    if isinstance(body, dict) and isinstance(body.get("name"), str) and status not in (429,):
        found = from_exception(body["name"], str(body.get("message") or ""), connection, status)
        if found is not None and (status < 500 or found.outcome is Outcome.RETRYABLE):
            return found
    return default_classify(response, body, connection)


def classify_jsonrpc(response: httpx.Response, body: Any, connection: str) -> Classified:
    """A JSON-RPC answer: HTTP 200 may still carry an ``error`` object."""
    if response.status_code != 200 or not isinstance(body, dict):
        if response.status_code == 200:
            return Classified(
                Outcome.RETRYABLE,
                "unavailable",
                f"'{connection}' answered something that is not JSON-RPC.",
                "Check the connection's base URL points at the Odoo server.",
            )
        return default_classify(response, body, connection)
    error = body.get("error")
    if not isinstance(error, dict):
        return Classified(Outcome.SUCCESS, "ok", "delivered", "")
    raw = error.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = str(data.get("name") or "")
    message = str(data.get("message") or error.get("message") or "")
    found = from_exception(name, message, connection)
    if found is not None:
        return found
    return Classified(
        Outcome.PERMANENT,
        "rejected",
        f"Odoo '{connection}' failed on this request ({name or 'Odoo Server Error'}): "
        f"{_short(message)}",
        "Look at the Odoo server log for this error; correct the data or the server, then retry.",
    )
