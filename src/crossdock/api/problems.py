"""Every error as RFC 9457 problem details (``application/problem+json``).

``type``, ``title``, ``status``, ``detail`` and, for validation, ``issues``: one entry per
bad field saying where it is, what is wrong and what is expected. Unexpected errors are
logged with their stack trace and answered with a plain 500 problem that has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("crossdock.api")

PROBLEM_JSON = "application/problem+json"


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int, detail: str, *, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON object of a problem."""
    return {
        "type": "about:blank",
        "title": title or _title(status),
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem-details response."""
    return Response(
        orjson.dumps(problem_body(status, detail, title=title, **extra), default=str),
        status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


class Problem(StarletteHTTPException):
    """Raise from a route to answer with a problem; ``issues`` for validation failures."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        issues: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, detail, headers)
        self.title = title
        self.issues = issues


def issue_dict(issue: Any) -> dict[str, Any]:
    """One validation issue as JSON, whatever object describes it (an issue with
    ``message``/``expected``/location attributes, a dict or a plain string)."""
    if isinstance(issue, dict):
        return {k: v for k, v in issue.items() if v is not None}
    if isinstance(issue, str):
        return {"message": issue}
    out: dict[str, Any] = {}
    for attr in (
        "file",
        "location",
        "loc",
        "path",
        "field",
        "line",
        "column",
        "message",
        "expected",
    ):
        value = getattr(issue, attr, None)
        if value is None or callable(value):
            continue
        if attr in ("line", "column") and value == 0:  # 0 means "no position"
            continue
        if isinstance(value, tuple | list):
            value = ".".join(str(p) for p in value)
        elif not isinstance(value, int | float | str | bool):
            value = str(value)
        out["location" if attr in ("loc", "path", "field") else attr] = value
    if "message" not in out:
        out["message"] = str(issue)
    return out


def issues_of(exc: BaseException) -> list[dict[str, Any]]:
    """The issues a validation error carries (``.issues``), or the error itself as one."""
    raw = getattr(exc, "issues", None)
    if isinstance(raw, Iterable) and not isinstance(raw, str | bytes):
        found = [issue_dict(i) for i in raw]
        if found:
            return found
    return [issue_dict(exc) if hasattr(exc, "message") else {"message": str(exc)}]


def _expected(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = str(err.get("type", ""))
    if "expected" in ctx:
        return str(ctx["expected"])
    if kind == "missing":
        return "a value"
    if kind.startswith("int"):
        return "an integer"
    if kind.startswith("float"):
        return "a number"
    if kind.startswith(("datetime", "timestamp")):
        return "an ISO 8601 time or epoch seconds"
    if kind.startswith("bool"):
        return "true or false"
    if kind.startswith("string"):
        return "a string" + (
            f" of at most {ctx['max_length']} characters" if "max_length" in ctx else ""
        )
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        bounds = {
            "less_than_equal": "<=",
            "greater_than_equal": ">=",
            "less_than": "<",
            "greater_than": ">",
        }
        limit = ctx.get("le", ctx.get("ge", ctx.get("lt", ctx.get("gt"))))
        return f"a number {bounds[kind]} {limit}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "a JSON object"
    if kind == "list_type":
        return "a JSON array"
    if kind == "json_invalid":
        return "valid JSON"
    return "a valid value"


def _handle_http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    extra: dict[str, Any] = {}
    title = None
    if isinstance(exc, Problem):
        title = exc.title
        if exc.issues is not None:
            extra["issues"] = exc.issues
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return problem_response(exc.status_code, detail, title=title, headers=headers, **extra)


def _handle_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        field = ".".join(loc[1:]) or where
        issues.append(
            {
                "location": where,
                "field": field,
                "message": err.get("msg", "invalid"),
                "expected": _expected(err),
            }
        )
    names = ", ".join(sorted({i["field"] for i in issues}))
    return problem_response(
        422, f"The request is not valid: {names}.", title="Invalid request", issues=issues
    )


class CatchAll:
    """ASGI middleware: an unexpected error is logged (with its trace) and answered with a
    500 problem that carries no stack trace and no internals."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an escaping exception into a 500 problem."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("api_error", path=scope.get("path"), method=scope.get("method"))
            if started:  # too late to answer: the server closes the connection
                raise
            response = problem_response(
                500,
                "Crossdock failed while handling this request. The error is in the server "
                "log; retrying may help.",
            )
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Install the problem-details handlers and the catch-all on ``app``."""
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_middleware(CatchAll)
