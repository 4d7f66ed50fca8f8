"""The REST API application (FastAPI), mounted by the hub at ``/api/v1``.

Routes are relative to the mount point; the OpenAPI document is ``/openapi.json`` and the
interactive docs ``/docs`` under it. Every data route lives under
``/workspaces/{ws}`` and needs an API key of that workspace (see ``crossdock.api.auth``);
every error is a problem-details body (see ``crossdock.api.problems``).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from crossdock.api import problems
from crossdock.api.case_routes import router as case_router
from crossdock.api.config_routes import router as config_router
from crossdock.api.context import ApiContext
from crossdock.api.queue_routes import router as queue_router

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest request body the API reads (an edited payload, a flow file)."""

DESCRIPTION = """\
Operate a Crossdock hub: connections and flows, the events and deliveries moving
through it, the audit trail of every call, the exception queue and its actions,
replay and key figures.

Authenticate with `Authorization: Bearer <api key>`; a key belongs to one workspace
and has a role: **viewer** reads, **operator** also acts on exceptions and replays,
**admin** also changes connections, flows and keys. Lists are paginated with `limit`
and `cursor` (pass the previous page's `next_cursor`). Times are ISO 8601 UTC.
Errors are `application/problem+json`.
"""


class ProblemDetails(BaseModel):
    """An error (RFC 9457), served as ``application/problem+json``."""

    type: str = Field(description="A URI naming the kind of problem (about:blank).")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, in plain words.")
    issues: list[dict[str, str | int]] | None = Field(
        default=None,
        description="For invalid input: each problem with where it is (location, field "
        "or line and column), the message and what is expected.",
    )


_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ProblemDetails, "description": "No API key, or not a valid one."},
    403: {"model": ProblemDetails, "description": "The key's role does not allow this."},
    404: {"model": ProblemDetails, "description": "Not found (or another workspace's)."},
    422: {"model": ProblemDetails, "description": "The request is not valid (see issues)."},
}


def create_api(ctx: ApiContext) -> FastAPI:
    """Build the API application around ``ctx`` (database, registry, secret box, hooks)."""
    app = FastAPI(
        title="Crossdock API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.ctx = ctx
    problems.install(app)
    for router in (config_router, queue_router, case_router):
        _add_routes(app, router)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    # Registered on the app itself (not include_router, which wraps them) so that
    # ``app.routes`` lists every APIRoute: tests walk it to check each one needs a key.
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"unexpected route {route!r}")
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            status_code=route.status_code,
            tags=list(route.tags),
            summary=route.summary,
            description=route.description,
            responses={**_ERRORS, **route.responses},
            name=route.name,
            response_model=route.response_model,
        )


__all__ = ["ApiContext", "create_api"]
