"""The Connections page (being built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crossdock.console.web import Viewing

router = APIRouter()


@router.get("/connections")
async def connections_page(page: Viewing) -> HTMLResponse:
    """The Connections page."""
    page.nav = "connections"
    return page.render("placeholder.html", title="Connections")
