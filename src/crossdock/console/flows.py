"""The Flows page (being built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crossdock.console.web import Viewing

router = APIRouter()


@router.get("/flows")
async def flows_page(page: Viewing) -> HTMLResponse:
    """The Flows page."""
    page.nav = "flows"
    return page.render("placeholder.html", title="Flows")
