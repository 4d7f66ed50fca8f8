"""The Dashboard page (being built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crossdock.console.web import Viewing

router = APIRouter()


@router.get("/")
async def dashboard_page(page: Viewing) -> HTMLResponse:
    """The Dashboard page."""
    page.nav = "dashboard"
    return page.render("placeholder.html", title="Dashboard")
