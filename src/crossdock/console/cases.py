"""The Cases page (being built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crossdock.console.web import Viewing

router = APIRouter()


@router.get("/cases")
async def cases_page(page: Viewing) -> HTMLResponse:
    """The Cases page."""
    page.nav = "cases"
    return page.render("placeholder.html", title="Cases")
