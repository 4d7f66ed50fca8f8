"""The console in a real browser: headless Chromium (Debian's package) driven by Playwright.

An operator signs in, sees a failed delivery appear as a case, fixes the lookup value and
replays, and watches the case close and the order reach the destination; a viewer cannot
retry; a user of one merchant cannot open another's record by URL. Screenshots of the
main pages are kept in ``test-artifacts/screenshots/`` (look at them after a change).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossdock.testing.console import PASSWORD, ConsoleHub, order

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CROSSDOCK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: scripts/test installs Debian's "
            "'chromium' package (or set CROSSDOCK_CHROMIUM)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser: Any, console_hub: ConsoleHub) -> Iterator[Any]:
    """A fresh browser context (no cookies) for each user in a test."""
    contexts: list[Any] = []

    def make() -> Any:
        ctx = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=console_hub.url)
        ctx.set_default_timeout(15000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


def shot(page: Any, name: str, backend: str) -> None:
    """Keep a full-page screenshot as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{backend}-{name}.png"), full_page=True)


def backend(hub: ConsoleHub) -> str:
    return "postgresql" if hub.database_url.startswith("postgresql") else "sqlite"


def sign_in(page: Any, username: str) -> None:
    page.goto("/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/w/"))


def wait_for_text(page: Any, url: str, text: str, timeout: float = 30.0) -> None:
    """Reload ``url`` until ``text`` is on the page (the pages refresh themselves too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        if text in page.content():
            return
        time.sleep(0.5)
    raise AssertionError(f"'{text}' did not appear on {url}")


def test_operator_fixes_a_lookup_in_the_browser_and_the_order_reaches_the_warehouse(
    console_hub: ConsoleHub, new_page: Any
) -> None:
    be = backend(console_hub)
    page = new_page()
    sign_in(page, "otto")

    console_hub.send("acme", order("B-1", ["ABC-2", "BROWSER-1"]))
    wait_for_text(page, "/console/w/acme/cases", "BROWSER-1")
    row = page.locator('[data-testid="case-row"]', has_text="BROWSER-1")
    assert "1 order waiting" in row.inner_text()
    shot(page, "cases", be)

    row.get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    assert page.get_by_test_id("case-state").inner_text() == "open"
    assert "BROWSER-1" in page.get_by_test_id("case-reason").inner_text()
    shot(page, "case-open", be)
    case_url = page.url

    page.get_by_test_id("lookup-value").fill("WH-BROWSER-1")
    page.get_by_test_id("lookup-save").click()
    page.wait_for_url(re.compile(r"notice="))
    assert "now maps to" in page.locator(".notice").inner_text()

    wait_for_text(page, case_url, 'data-testid="case-state">closed')
    assert page.get_by_test_id("case-state").inner_text() == "closed"
    shot(page, "case-closed", be)

    picks = console_hub.wait(
        lambda: [p for p in console_hub.picks("acme") if p["body"]["order_number"] == "#B-1"],
        what="the pick of order B-1 at the warehouse",
    )
    assert len(picks) == 1
    assert {line["item"] for line in picks[0]["body"]["lines"]} == {"WH-ABC-2", "WH-BROWSER-1"}

    page.goto("/console/w/acme/records?q=B-1")
    shot(page, "record", be)
    for path, name in (("", "dashboard"), ("connections", "connections"), ("flows", "flows")):
        page.goto(f"/console/w/acme/{path}")
        shot(page, name, be)


def test_a_viewer_sees_the_case_but_cannot_retry_it(console_hub: ConsoleHub, new_page: Any) -> None:
    be = backend(console_hub)
    console_hub.send("acme", order("V-B", ["VIEWONLY-1"]))
    page = new_page()
    sign_in(page, "vera")
    wait_for_text(page, "/console/w/acme/cases", "VIEWONLY-1")
    page.locator('[data-testid="case-row"]', has_text="VIEWONLY-1").get_by_role(
        "link"
    ).first.click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    assert page.get_by_test_id("retry-all").count() == 0
    assert page.get_by_test_id("lookup-form").count() == 0
    shot(page, "case-viewer", be)
    # Even a hand-made request with the viewer's own CSRF token is refused.
    status = page.evaluate(
        """async () => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(location.pathname + '/retry', {
                method: 'POST',
                headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                body: 'csrf_token=' + encodeURIComponent(token),
            });
            return r.status;
        }"""
    )
    assert status == 403
    page.reload()
    assert page.get_by_test_id("case-state").inner_text() == "open"


def test_a_merchants_user_cannot_open_another_merchants_record_by_url(
    console_hub: ConsoleHub, new_page: Any
) -> None:
    be = backend(console_hub)
    console_hub.send("acme", order("SECRET-7", ["PRIVATE-7"]))
    acme = new_page()
    sign_in(acme, "ada")
    wait_for_text(acme, "/console/w/acme/cases", "PRIVATE-7")
    acme.locator('[data-testid="case-row"]', has_text="PRIVATE-7").get_by_role("link").first.click()
    acme.wait_for_url(re.compile(r"/cases/\d+$"))
    case_url = acme.url
    record_link = acme.locator('[data-testid="affected-row"] a').first.get_attribute("href")
    assert record_link

    other = new_page()
    sign_in(other, "gina")
    assert "/console/w/globex/" in other.url
    for url in (case_url, record_link, "/console/w/acme/records?q=SECRET-7"):
        resp = other.goto(url)
        assert resp is not None and resp.status == 404, url
        assert "SECRET-7" not in other.content() and "PRIVATE-7" not in other.content()
    shot(other, "other-merchant-404", be)
    # and the switcher offers only globex
    other.goto("/console/w/globex/cases")
    assert other.locator('a[href="/console/w/acme/"]').count() == 0
