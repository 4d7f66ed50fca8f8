"""Sign-in, sessions, CSRF and roles in the console, against a real hub process."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from crossdock.store.database import Database
from crossdock.store.tables import console_sessions, users
from crossdock.testing.console import PASSWORD, ConsoleHub, csrf_of, order, sign_in

pytestmark = pytest.mark.slow


def _case_ids(client: httpx.Client, ws: str, state: str = "all") -> list[str]:
    page = client.get(f"/console/w/{ws}/cases?state={state}").text
    return re.findall(rf'href="/console/w/{ws}/cases/(\d+)"', page)


def _open_case(hub: ConsoleHub, sku: str, order_id: str) -> str:
    """Make a lookup exception for ``sku`` and return its case id."""
    hub.send("acme", order(order_id, [sku]))
    admin = hub.client("ada")
    return str(
        hub.wait(
            lambda: next(
                (
                    cid
                    for cid in _case_ids(admin, "acme", "open")
                    if sku in admin.get(f"/console/w/acme/cases/{cid}").text
                ),
                None,
            ),
            what=f"a case for {sku}",
        )
    )


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(
    console_hub: ConsoleHub,
) -> None:
    for username, password in (("ada", "not the password"), ("nobody", PASSWORD)):
        c = console_hub.client()
        r = sign_in(c, username, password)
        assert r.status_code == 401
        assert "do not match a user" in r.text
        assert "crossdock_session" not in c.cookies


def test_passwords_are_stored_as_argon2id_hashes_only(console_hub: ConsoleHub) -> None:
    db = Database(console_hub.database_url)
    try:
        hashes = db.read_sync(
            lambda conn: [r[0] for r in conn.execute(select(users.c.password_hash))]
        )
    finally:
        db.close()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(PASSWORD in h for h in hashes)


def test_a_page_sends_you_to_sign_in_and_back_where_you_were_going(
    console_hub: ConsoleHub,
) -> None:
    c = console_hub.client()
    r = c.get("/console/w/acme/cases?state=all")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=")
    form = c.get(r.headers["location"]).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    nxt = re.search(r'name="next" value="([^"]+)"', form)
    assert token and nxt
    r = c.post(
        "/console/login",
        data={
            "username": "otto",
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": nxt.group(1).replace("&amp;", "&"),
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/w/acme/cases?state=all"


def test_sign_in_does_not_redirect_to_another_site(console_hub: ConsoleHub) -> None:
    c = console_hub.client()
    form = c.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    r = c.post(
        "/console/login",
        data={
            "username": "otto",
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": "https://evil.example/console/",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/"


def test_the_sign_in_form_needs_its_csrf_token(console_hub: ConsoleHub) -> None:
    c = console_hub.client()
    c.get("/console/login")
    r = c.post("/console/login", data={"username": "ada", "password": PASSWORD})
    assert r.status_code == 403
    assert "crossdock_session" not in c.cookies


def test_session_cookie_is_httponly_and_samesite_and_stored_only_as_a_hash(
    console_hub: ConsoleHub,
) -> None:
    c = console_hub.client()
    r = sign_in(c, "vera")
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "crossdock_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = c.cookies["crossdock_session"]
    db = Database(console_hub.database_url)
    try:
        stored = db.read_sync(
            lambda conn: [r[0] for r in conn.execute(select(console_sessions.c.token_hash))]
        )
    finally:
        db.close()
    assert token not in stored and len(stored[0]) == 64


def test_actions_without_the_sessions_csrf_token_are_refused_and_change_nothing(
    console_hub: ConsoleHub,
) -> None:
    cid = _open_case(console_hub, "CSRF-1", "C-1")
    c = console_hub.client("otto")
    url = f"/console/w/acme/cases/{cid}/retry"
    assert c.post(url).status_code == 403
    assert c.post(url, data={"csrf_token": "forged"}).status_code == 403
    token = csrf_of(c, f"/console/w/acme/cases/{cid}")
    cross_site = c.post(url, data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    other = console_hub.client("tess")  # another user's token does not work either
    assert other.post(url, data={"csrf_token": token}).status_code == 403
    page = c.get(f"/console/w/acme/cases/{cid}").text
    assert "otto" not in page.split("Notes", 1)[1]  # no action left a trace
    ok = c.post(url, data={"csrf_token": token})
    assert ok.status_code == 303 and "notice=" in ok.headers["location"]


def test_a_viewer_sees_cases_but_cannot_retry_fix_or_skip(console_hub: ConsoleHub) -> None:
    cid = _open_case(console_hub, "VIEW-1", "V-1")
    viewer = console_hub.client("vera")
    page = viewer.get(f"/console/w/acme/cases/{cid}")
    assert page.status_code == 200 and "VIEW-1" in page.text
    assert 'data-testid="retry-all"' not in page.text
    assert 'data-testid="lookup-form"' not in page.text
    token = csrf_of(viewer, f"/console/w/acme/cases/{cid}")
    for action, data in (
        ("retry", {}),
        ("lookup", {"flow": "orders-to-warehouse", "table": "skus", "key": "VIEW-1", "value": "X"}),
        ("skip", {"reason": "no"}),
        ("resolve", {"note": "no"}),
        ("note", {"text": "hi"}),
        ("assign", {"assignee": "vera"}),
    ):
        r = viewer.post(f"/console/w/acme/cases/{cid}/{action}", data={"csrf_token": token, **data})
        assert r.status_code == 403, action
        assert "operator" in r.text
    assert 'data-testid="case-state">open' in viewer.get(f"/console/w/acme/cases/{cid}").text


def test_a_merchants_user_cannot_open_another_merchants_pages_by_url(
    console_hub: ConsoleHub,
) -> None:
    cid = _open_case(console_hub, "PRIV-1", "P-1")
    gina = console_hub.client("gina")  # globex only
    hidden = gina.get(f"/console/w/acme/cases/{cid}")
    missing = gina.get("/console/w/no-such-merchant/cases/1")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text == missing.text  # nothing tells hidden from missing
    assert "PRIV-1" not in hidden.text
    for path in ("", "cases", "records?q=P-1", "connections", "flows"):
        assert gina.get(f"/console/w/acme/{path}").status_code == 404, path
    token = csrf_of(gina, "/console/w/globex/cases")
    r = gina.post(f"/console/w/acme/cases/{cid}/retry", data={"csrf_token": token})
    assert r.status_code == 404
    # and a case id of acme under globex's address is not found either
    assert gina.get(f"/console/w/globex/cases/{cid}").status_code == 404


def test_a_3pl_user_switches_between_their_merchants_and_sees_no_others(
    console_hub: ConsoleHub,
) -> None:
    tess = console_hub.client("tess")
    page = tess.get("/console/w/acme/cases").text
    assert "/console/w/acme/" in page and "/console/w/globex/" in page
    assert tess.get("/console/w/globex/cases").status_code == 200
    gina = console_hub.client("gina").get("/console/w/globex/cases").text
    assert "/console/w/acme/" not in gina


def test_signing_out_ends_the_session(console_hub: ConsoleHub) -> None:
    c = console_hub.client("otto")
    token = c.cookies["crossdock_session"]
    csrf = csrf_of(c, "/console/w/acme/cases")
    assert c.post("/console/logout", data={"csrf_token": csrf}).status_code == 303
    replay = console_hub.client()
    replay.cookies.set("crossdock_session", token)
    assert replay.get("/console/w/acme/cases").status_code == 303  # back to sign-in


def test_every_console_route_needs_a_signed_in_user(console_hub: ConsoleHub) -> None:
    from fastapi.routing import APIRoute

    from crossdock.console.app import PAGES

    anonymous = console_hub.client()
    checked = 0
    for module in PAGES:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            path = "/console/w/acme" + re.sub(r"\{[^}]+\}", "1", route.path)
            for method in route.methods or ():
                r = anonymous.request(method, path)
                if method == "GET":
                    assert r.status_code == 303, path
                    assert "/console/login" in r.headers["location"], path
                else:
                    assert r.status_code in (401, 403), (method, path, r.status_code)
                checked += 1
    assert checked >= 15
