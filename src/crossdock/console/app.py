"""The operations console, served by ``crossdock serve`` under ``/console``.

Server-rendered pages (Jinja2), charts drawn as SVG on the server, one small stylesheet
and script shipped with the package: the console needs no CDN and works offline. Pages:

- ``/console/login``: sign in (argon2id hashes; a session cookie plus a CSRF token);
- ``/console/w/{ws}/``: the dashboard (KPIs per connection and flow over a window);
- ``/console/w/{ws}/cases``: the exception queue grouped into cases by cause;
- ``/console/w/{ws}/records``: search a record and see its journey across systems;
- ``/console/w/{ws}/connections`` and ``/console/w/{ws}/flows``.

Users and their roles per workspace are managed with ``crossdock users``.
"""

from __future__ import annotations

import os
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from crossdock.api.context import ApiContext
from crossdock.console import cases, connections, dashboard, flows, install, records
from crossdock.console.users import check_password, create_session, end_session
from crossdock.console.web import (
    HERE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleError,
    check_csrf,
    context,
    error_response,
    session_user,
    templates,
)

PAGES = (dashboard, cases, records, connections, flows, install)


def create_console(ctx: ApiContext, *, secure_cookies: bool = False) -> FastAPI:
    """The console application around ``ctx`` (mount it at ``/console``)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    app.state.secure_cookies = secure_cookies or os.environ.get("CROSSDOCK_SECURE_COOKIES") == "1"
    app.add_exception_handler(ConsoleError, error_response)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_api_route("/", home, methods=["GET"])
    app.add_api_route("/login", login_form, methods=["GET"])
    app.add_api_route("/login", login, methods=["POST"])
    app.add_api_route("/logout", logout, methods=["POST"])
    for module in PAGES:
        app.include_router(module.router, prefix="/w/{ws}")
    app.include_router(install.callback_router)
    return app


def _secure(request: Request) -> bool:
    """Cookies are Secure when the console is reached over HTTPS (directly or through a
    proxy that uvicorn trusts), or when ``CROSSDOCK_SECURE_COOKIES=1``."""
    return bool(request.app.state.secure_cookies) or request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (never another site) is a place to go back to."""
    if not target:
        return "/console/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console/"):
        return "/console/"
    return target


async def home(request: Request) -> Response:
    """Go to the first workspace the user may see (or to sign in)."""
    user = await session_user(request)
    if user is None:
        return RedirectResponse("/console/login", status_code=303)
    if not user.memberships:
        return templates.TemplateResponse(
            request,
            "error.html",
            {
                "title": "No workspace yet",
                "detail": "Your user has no workspace. Ask an admin to run "
                "'crossdock users grant' for you.",
                "status": 403,
                "user": user,
            },
            status_code=403,
        )
    ws = user.memberships[0].workspace
    return RedirectResponse(f"/console/w/{quote(ws, safe='')}/", status_code=303)


def _login_page(request: Request, token: str, problem: str = "", status: int = 200) -> Response:
    resp = templates.TemplateResponse(
        request,
        "login.html",
        {
            "csrf": token,
            "next": _safe_next(request.query_params.get("next")),
            "problem": problem,
            "username": "",
        },
        status_code=status,
    )
    resp.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/console",
    )
    return resp


async def login_form(request: Request) -> Response:
    """The sign-in form (with a fresh CSRF token bound to a cookie)."""
    import secrets

    return _login_page(request, secrets.token_urlsafe(32))


async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password; on success start a session and go where the user was going."""
    import hmac
    import secrets

    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(
            request,
            secrets.token_urlsafe(32),
            "The sign-in form expired. Please try again.",
            status=403,
        )
    db = context(request).db

    def verify(conn: object) -> str | None:
        uid = check_password(conn, username, password)  # type: ignore[arg-type]
        return None if uid is None else create_session(conn, uid)  # type: ignore[arg-type]

    token = await db.write(verify)
    if token is None:
        return _login_page(
            request,
            secrets.token_urlsafe(32),
            "That username and password do not match a user of this hub.",
            status=401,
        )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return resp


async def logout(request: Request) -> Response:
    """Sign out (needs the session's CSRF token, so another site cannot sign you out)."""
    user = await session_user(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if user is not None:
        await check_csrf(request, user)
        await context(request).db.write(lambda conn: end_session(conn, token))
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
