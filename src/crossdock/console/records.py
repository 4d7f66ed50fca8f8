"""The Records page (being built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crossdock.console.web import Viewing

router = APIRouter()


@router.get("/records")
async def records_page(page: Viewing) -> HTMLResponse:
    """The Records page."""
    page.nav = "records"
    return page.render("placeholder.html", title="Records")
