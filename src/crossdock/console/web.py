"""What every console page shares: the signed-in user, the workspace, roles, CSRF, templates.

A page route takes ``page: Viewing`` (any role) or ``page: Operating`` / ``page: Administering``
(for actions, which also check the CSRF token). The dependency answers for the route:

- not signed in: a page redirects to the sign-in form (and back afterwards); an action is 401;
- a workspace the user may not see, or that does not exist: 404, the same page for both,
  so one merchant's users cannot learn another merchant's names, records or ids;
- a role below the route's: 403, naming the role needed.

Actions are POSTs carrying the session's CSRF token in the form field ``csrf_token`` (or
the ``X-CSRF-Token`` header); the session cookie is HttpOnly and SameSite=Lax, and a
cross-site ``Origin`` is refused as well.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from crossdock.api.context import ApiContext
from crossdock.console.users import SessionUser, load_session
from crossdock.security.apikeys import Role

SESSION_COOKIE = "crossdock_session"
LOGIN_CSRF_COOKIE = "crossdock_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


# -- filters ----------------------------------------------------------------------------
def _when(ts: float | None) -> str:
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(ts: float | None, now: float | None = None) -> str:
    if not ts:
        return "never"
    d = (now or time.time()) - ts
    if d < 0:
        return "in " + _span(-d)
    return _span(d) + " ago"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = abs(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 10000 else f"{value / 1000:.1f} s"


def _num(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


templates.env.filters.update(when=_when, ago=_ago, span=_span, pct=_pct, ms=_ms, num=_num)
templates.env.globals["quote"] = lambda s: quote(str(s), safe="")


# -- errors the pages raise -------------------------------------------------------------
class ConsoleError(Exception):
    """Answer a console request with an error page (or a redirect to sign in)."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail


class SignInRequired(ConsoleError):
    """No valid session."""

    def __init__(self) -> None:
        super().__init__(401, "Please sign in", "Your session ended or you are not signed in.")


def not_found(what: str = "This page") -> ConsoleError:
    """The 404 every hidden or missing thing gets (the same for both)."""
    return ConsoleError(404, "Not found", f"{what} does not exist, or you may not see it.")


# -- the page context -------------------------------------------------------------------
@dataclass
class Page:
    """A console request: who, in which workspace, with which role, and how to render."""

    request: Request
    ctx: ApiContext
    user: SessionUser
    workspace: str
    workspace_name: str
    role: Role
    nav: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def can_operate(self) -> bool:
        """Whether the user may act (retry, skip, fix, assign)."""
        return self.role.allows(Role.OPERATOR)

    @property
    def can_admin(self) -> bool:
        """Whether the user may change configuration."""
        return self.role.allows(Role.ADMIN)

    def url(self, path: str = "") -> str:
        """A console URL inside this workspace."""
        return f"/console/w/{quote(self.workspace, safe='')}/{path.lstrip('/')}"

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """Render ``template`` with the layout's values and ``values``."""
        context = {
            "page": self,
            "user": self.user,
            "ws": self.workspace,
            "ws_name": self.workspace_name,
            "role": self.role.value,
            "csrf": self.user.csrf,
            "notice": self.request.query_params.get("notice", ""),
            "problem": self.request.query_params.get("problem", ""),
            **values,
        }
        return templates.TemplateResponse(self.request, template, context, status_code=status)

    def back(self, path: str, notice: str = "", problem: str = "") -> RedirectResponse:
        """Redirect (303) to a page of this workspace with a notice or a problem shown."""
        url = self.url(path)
        q = []
        if notice:
            q.append("notice=" + quote(notice, safe=""))
        if problem:
            q.append("problem=" + quote(problem, safe=""))
        if q:
            url += ("&" if "?" in url else "?") + "&".join(q)
        return RedirectResponse(url, status_code=303)


def context(request: Request) -> ApiContext:
    """The hub's :class:`ApiContext` (database, registry, hooks)."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def session_user(request: Request) -> SessionUser | None:
    """The signed-in user of ``request``, or None."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    cached = request.scope.get("crossdock.user")
    if cached is not None:
        return cached
    user = await context(request).db.read(lambda conn: load_session(conn, token))
    request.scope["crossdock.user"] = user
    return user


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def check_csrf(request: Request, user: SessionUser) -> None:
    """Refuse a state-changing request without this session's CSRF token (403)."""
    if not _same_origin(request):
        raise ConsoleError(403, "Refused", "The request came from another site.")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent.encode(), user.csrf.encode()):
        raise ConsoleError(
            403,
            "Refused: the form expired",
            "The form's security token is missing or stale. Reload the page and try again.",
        )


def _page_dependency(required: Role, action: bool) -> Any:
    async def dependency(request: Request, ws: str) -> Page:
        user = await session_user(request)
        if user is None:
            raise SignInRequired()
        role = user.role_in(ws)
        if role is None:
            raise not_found("This workspace")
        if action:
            await check_csrf(request, user)
        if not role.allows(required):
            raise ConsoleError(
                403,
                "Not allowed",
                f"This needs the '{required.value}' role in this workspace; you have "
                f"'{role.value}'.",
            )
        name = next(m.name for m in user.memberships if m.workspace == ws)
        return Page(
            request=request,
            ctx=context(request),
            user=user,
            workspace=ws,
            workspace_name=name,
            role=role,
        )

    dependency.__name__ = f"{'act' if action else 'view'}_{required.value}"
    return Depends(dependency)


Viewing = Annotated[Page, _page_dependency(Role.VIEWER, action=False)]
"""A page anyone with a role in the workspace may see."""
Operating = Annotated[Page, _page_dependency(Role.OPERATOR, action=True)]
"""An action that needs the operator role (and the CSRF token)."""
Administering = Annotated[Page, _page_dependency(Role.ADMIN, action=True)]
"""An action that needs the admin role (and the CSRF token)."""
AdminViewing = Annotated[Page, _page_dependency(Role.ADMIN, action=False)]
"""A page only admins may see."""


def error_response(request: Request, exc: ConsoleError) -> Response:
    """The page (or redirect) for a :class:`ConsoleError`."""
    if isinstance(exc, SignInRequired) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/console/login?next=" + quote(target, safe=""), status_code=303)
    return templates.TemplateResponse(
        request,
        "error.html",
        {"title": exc.title, "detail": exc.detail, "status": exc.status},
        status_code=exc.status,
    )
