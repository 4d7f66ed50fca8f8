"""Exception cases: one cause is one case; fixing it replays every affected delivery and
closes the case; every action leaves a trace. Against a real hub and the sink."""

from __future__ import annotations

import re

import httpx
import pytest

from crossdock.store.cases import cause_of
from crossdock.testing.console import ConsoleHub, csrf_of, order

pytestmark = pytest.mark.slow


def _cases(client: httpx.Client, state: str = "all") -> str:
    return client.get(f"/console/w/acme/cases?state={state}").text


def _case_for(hub: ConsoleHub, client: httpx.Client, text: str) -> str:
    def find() -> str | None:
        page = _cases(client)
        for cid in re.findall(r'data-case-id="(\d+)"', page):
            if text in client.get(f"/console/w/acme/cases/{cid}").text:
                return str(cid)
        return None

    return str(hub.wait(find, what=f"a case mentioning {text}"))


def _waiting(client: httpx.Client, cid: str) -> int:
    m = re.search(
        r'data-testid="case-waiting">(\d+)', client.get(f"/console/w/acme/cases/{cid}").text
    )
    return int(m.group(1)) if m else 0


def _state(client: httpx.Client, cid: str) -> str:
    m = re.search(
        r'data-testid="case-state">(\w+)<', client.get(f"/console/w/acme/cases/{cid}").text
    )
    assert m
    return m.group(1)


def test_failures_with_one_cause_become_one_case_with_the_count_waiting(
    console_hub: ConsoleHub,
) -> None:
    for i in range(4):
        console_hub.send("acme", order(f"G-{i}", ["GROUP-1"]))
    console_hub.send("acme", order("G-9", ["GROUP-2"]))
    otto = console_hub.client("otto")
    cid = _case_for(console_hub, otto, "GROUP-1")
    console_hub.wait(lambda: _waiting(otto, cid) == 4, what="4 orders in the case")
    other = _case_for(console_hub, otto, "GROUP-2")
    assert other != cid
    board = _cases(otto, "open")
    assert "SKU &#39;GROUP-1&#39; is not in lookup table &#39;skus&#39;" in board
    assert "— 4 orders waiting" in board


def test_fixing_the_lookup_value_replays_every_affected_delivery_and_closes_the_case(
    console_hub: ConsoleHub,
) -> None:
    for i in range(3):
        console_hub.send("acme", order(f"F-{i}", ["FIX-1", "ABC-1"]))
    otto = console_hub.client("otto")
    cid = _case_for(console_hub, otto, "FIX-1")
    console_hub.wait(lambda: _waiting(otto, cid) == 3, what="3 orders in the case")
    token = csrf_of(otto, f"/console/w/acme/cases/{cid}")
    r = otto.post(
        f"/console/w/acme/cases/{cid}/lookup",
        data={
            "csrf_token": token,
            "flow": "orders-to-warehouse",
            "table": "skus",
            "key": "FIX-1",
            "value": "WH-FIX-1",
        },
    )
    assert r.status_code == 303 and "Replaying%203" in r.headers["location"]
    console_hub.wait(lambda: _state(otto, cid) == "closed", what="the case to close itself")

    def fixed_picks() -> list[dict[str, object]]:
        return [
            p
            for p in console_hub.picks("acme")
            if any(line["item"] == "WH-FIX-1" for line in p["body"]["lines"])  # type: ignore[index]
        ]

    picks = console_hub.wait(lambda: len(fixed_picks()) == 3 and fixed_picks(), what="3 picks")
    assert sorted(p["body"]["order_number"] for p in picks) == ["#F-0", "#F-1", "#F-2"]  # type: ignore[index]
    page = otto.get(f"/console/w/acme/cases/{cid}").text
    assert "Set &#39;FIX-1&#39; = &#39;WH-FIX-1&#39;" in page  # the fix is in the notes
    # A later order with the same SKU goes straight through with the value set.
    console_hub.send("acme", order("F-9", ["FIX-1"]))
    console_hub.wait(lambda: len(fixed_picks()) == 4, what="the later order's pick")


def test_a_value_for_a_table_the_flow_does_not_have_is_refused_in_plain_words(
    console_hub: ConsoleHub,
) -> None:
    console_hub.send("acme", order("T-1", ["TABLE-1"]))
    otto = console_hub.client("otto")
    cid = _case_for(console_hub, otto, "TABLE-1")
    token = csrf_of(otto, f"/console/w/acme/cases/{cid}")
    r = otto.post(
        f"/console/w/acme/cases/{cid}/lookup",
        data={
            "csrf_token": token,
            "flow": "orders-to-warehouse",
            "table": "nope",
            "key": "K",
            "value": "V",
        },
    )
    assert r.status_code == 303 and "problem=" in r.headers["location"]
    assert "has no lookup table" in otto.get(r.headers["location"]).text
    assert _state(otto, cid) == "open"


def test_edit_and_retry_sends_the_edited_payload_and_bad_json_sends_nothing(
    console_hub: ConsoleHub,
) -> None:
    console_hub.send("acme", order("E-1", ["EDIT-1"]))
    otto = console_hub.client("otto")
    cid = _case_for(console_hub, otto, "EDIT-1")
    page = otto.get(f"/console/w/acme/cases/{cid}").text
    eid = re.search(r'data-exception-id="(\d+)"', page)
    assert eid
    edit = f"/console/w/acme/cases/{cid}/exceptions/{eid.group(1)}/edit"
    form = otto.get(edit)
    assert form.status_code == 200 and "EDIT-1" in form.text  # the event is shown
    token = csrf_of(otto, edit)
    bad = otto.post(edit, data={"csrf_token": token, "payload": '{"order_ref": '})
    assert bad.status_code == 422
    assert "not valid JSON" in bad.text and "{&#34;order_ref&#34;: " in bad.text  # text kept
    before = len(console_hub.picks("acme"))
    payload = (
        '{"order_ref": "E-1", "order_number": "#E-1", '
        '"lines": [{"item": "WH-HAND", "quantity": 1}]}'
    )
    ok = otto.post(edit, data={"csrf_token": token, "payload": payload})
    assert ok.status_code == 303
    picks = console_hub.wait(
        lambda: [p for p in console_hub.picks("acme") if p["body"].get("order_ref") == "E-1"],
        what="the edited pick",
    )
    assert picks[0]["body"]["lines"] == [{"item": "WH-HAND", "quantity": 1}]
    assert len(console_hub.picks("acme")) == before + 1
    console_hub.wait(lambda: _state(otto, cid) == "closed", what="the case to close")


def test_skip_all_closes_the_case_and_says_who_and_why(console_hub: ConsoleHub) -> None:
    for i in range(2):
        console_hub.send("acme", order(f"S-{i}", ["SKIP-1"]))
    otto = console_hub.client("otto")
    cid = _case_for(console_hub, otto, "SKIP-1")
    console_hub.wait(lambda: _waiting(otto, cid) == 2, what="2 orders")
    token = csrf_of(otto, f"/console/w/acme/cases/{cid}")
    empty = otto.post(
        f"/console/w/acme/cases/{cid}/skip", data={"csrf_token": token, "reason": " "}
    )
    assert "problem=" in empty.headers["location"]
    r = otto.post(
        f"/console/w/acme/cases/{cid}/skip",
        data={"csrf_token": token, "reason": "test orders, cancelled"},
    )
    assert r.status_code == 303
    page = otto.get(f"/console/w/acme/cases/{cid}").text
    assert 'data-testid="case-state">closed' in page
    assert "skipped by otto: test orders, cancelled" in page


def test_assigning_and_notes_are_kept_on_the_case(console_hub: ConsoleHub) -> None:
    console_hub.send("acme", order("N-1", ["NOTE-1"]))
    otto = console_hub.client("otto")
    cid = _case_for(console_hub, otto, "NOTE-1")
    token = csrf_of(otto, f"/console/w/acme/cases/{cid}")
    base = f"/console/w/acme/cases/{cid}"
    assert (
        otto.post(base + "/assign", data={"csrf_token": token, "assignee": "tess"}).status_code
        == 303
    )
    nobody = otto.post(base + "/assign", data={"csrf_token": token, "assignee": "gina"})
    assert "problem=" in nobody.headers["location"]  # gina is not in this workspace
    otto.post(base + "/note", data={"csrf_token": token, "text": "Asked the buyer for the SKU."})
    page = otto.get(base).text
    assert 'data-testid="case-assignee">tess' in page
    assert "Asked the buyer for the SKU." in page and "Assigned to tess." in page


def test_system_causes_group_by_connection_whatever_the_vendor_said() -> None:
    a = cause_of("auth", "'shop' refused our credentials (HTTP 401). It said: {\"id\": 1}", "f1")
    b = cause_of("auth", "'shop' refused our credentials (HTTP 403). It said: req 2", "f2")
    c = cause_of("auth", "'wms' refused our credentials (HTTP 401).", "f1")
    assert a.key == b.key != c.key
    assert a.title == "'shop' rejected the credentials: writes to shop are stopped"
    d = cause_of("lookup", "SKU 'X-1' is not in lookup table 'skus' of flow f", "f")
    e = cause_of("lookup", "SKU 'X-2' is not in lookup table 'skus' of flow f", "f")
    assert d.key != e.key
    assert d.hint == {"kind": "lookup", "flow": "f", "table": "skus", "key": "X-1"}


def test_the_api_lists_cases_and_a_lookup_fix_through_it_replays_the_case(
    console_hub: ConsoleHub,
) -> None:
    from crossdock.api.keys import create_api_key
    from crossdock.store.database import Database

    db = Database(console_hub.database_url)
    try:
        key = create_api_key(db, "acme", "ops-script", "operator")
        viewer_key = create_api_key(db, "acme", "wallboard", "viewer")
        globex_key = create_api_key(db, "globex", "globex-admin", "admin")
    finally:
        db.close()
    console_hub.send("acme", order("API-1", ["APIFIX-1"]))
    api = httpx.Client(
        base_url=console_hub.url + "/api/v1", headers={"Authorization": f"Bearer {key}"}
    )

    def find() -> dict[str, object] | None:
        items = api.get("/workspaces/acme/cases").json()["items"]
        return next((c for c in items if "APIFIX-1" in c["title"]), None)

    case = console_hub.wait(find, what="the case in the API")
    assert case["one_click_fix"] == {
        "kind": "lookup",
        "flow": "orders-to-warehouse",
        "table": "skus",
        "key": "APIFIX-1",
    }
    url = f"/workspaces/acme/cases/{case['id']}"
    other = httpx.get(
        console_hub.url + "/api/v1" + url, headers={"Authorization": f"Bearer {globex_key}"}
    )
    assert other.status_code == 404
    fix = {"flow": "orders-to-warehouse", "table": "skus", "key": "APIFIX-1", "value": "WH-API"}
    refused = httpx.post(
        console_hub.url + "/api/v1" + url + "/lookup",
        json=fix,
        headers={"Authorization": f"Bearer {viewer_key}"},
    )
    assert refused.status_code == 403
    r = api.post(url + "/lookup", json=fix)
    assert r.status_code == 200 and r.json()["replayed"] == 1
    console_hub.wait(lambda: api.get(url).json()["state"] == "closed", what="the case to close")
    assert any(
        p["body"]["order_number"] == "#API-1" and p["body"]["lines"][0]["item"] == "WH-API"
        for p in console_hub.picks("acme")
    )
