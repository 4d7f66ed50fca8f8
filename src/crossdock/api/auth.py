"""Authentication and authorisation of API calls.

Every route is under ``/workspaces/{ws}``. The caller presents ``Authorization: Bearer
<api key>``: no key or a bad key is 401; a key of another workspace is 404 (the API does
not say whether the workspace exists); a role below the route's is 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from crossdock.api.context import ApiContext
from crossdock.api.keys import Principal, authenticate
from crossdock.api.problems import Problem
from crossdock.security.apikeys import Role

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key `cdk_<prefix>_<secret>` (create one with `crossdock keys create`).",
)


def context(request: Request) -> ApiContext:
    """The :class:`ApiContext` of the app serving ``request``."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="crossdock"'})


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting API keys of the route's workspace with at least ``role``."""
    required = Role(role)

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> Principal:
        if credentials is None or not credentials.credentials:
            raise _unauthorized("An API key is required: send 'Authorization: Bearer <key>'.")
        key = credentials.credentials
        ctx = context(request)
        principal = await ctx.db.read(lambda conn: authenticate(conn, key))
        if principal is None:
            raise _unauthorized("The API key is not valid (unknown, revoked or mistyped).")
        ws = request.path_params.get("ws")
        if ws is not None and ws != principal.workspace:
            raise Problem(404, f"No workspace '{ws}'.")
        if not principal.role.allows(required):
            raise Problem(
                403,
                f"This needs the '{required.value}' role; the key '{principal.name}' has "
                f"'{principal.role.value}'.",
            )
        return principal

    dependency.__name__ = f"require_{required.value}"
    return dependency


viewer = require("viewer")
operator = require("operator")
admin = require("admin")
