"""A hub with two merchants, the reference sink and console users: for console tests and
the console benchmark.

Workspaces ``acme`` and ``globex`` each have a signed webhook source ``shop`` and the
sink; ``orders-to-sink`` sends each order to the sink and ``orders-to-warehouse`` then
asks for a pick with SKUs translated through the lookup table ``skus`` (ABC-1..3), so an
order with another SKU opens a lookup exception that a person can fix in the console.

Users (password :data:`PASSWORD`): ``ada`` admin of acme, ``otto`` operator of acme,
``vera`` viewer of acme, ``gina`` admin of globex only, ``tess`` operator of both (a 3PL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from crossdock.testing.processes import Hub, Sink

PASSWORD = "correct horse battery staple"
SECRETS = {"acme": "acme-shop-secret-1", "globex": "globex-shop-secret-2"}
USERS = {
    "ada": {"acme": "admin"},
    "otto": {"acme": "operator"},
    "vera": {"acme": "viewer"},
    "gina": {"globex": "admin"},
    "tess": {"acme": "operator", "globex": "operator"},
}

_WORKSPACE = """
  {ws}:
    name: {name}
    connections:
      shop:
        connector: http
        inbound:
          signature: {{scheme: hmac-sha256, header: X-Signature, encoding: hex, secret: "{secret}"}}
          event_type: "headers['x-event-type']"
          record_key: "body.id"
          version: "body.version"
          event_id: "headers['x-event-id']"
      sink:
        connector: http
        outbound:
          base_url: "{sink}"
          timeout_seconds: 5
          operations:
            create_order:
              method: POST
              path: /records/{ws}-orders
              external_id: "body.id"
              idempotency_header: Idempotency-Key
              lookup: {{method: GET, path: "/records/{ws}-orders/by-key/{{idempotency_key}}"}}
            create_pick:
              method: POST
              path: /records/{ws}-picks
              external_id: "body.id"
              idempotency_header: Idempotency-Key
              lookup: {{method: GET, path: "/records/{ws}-picks/by-key/{{idempotency_key}}"}}
"""

_ORDERS = """
name: orders-to-sink
description: Orders from the shop to the sink
trigger: {connection: shop, events: [order.created, order.updated]}
mapping:
  order_number: body.name
  currency: "body.currency | default('EUR') | upper"
  lines:
    $each: body.line_items
    $as: line
    $map: {sku: line.sku, quantity: "line.quantity | int"}
action: {connection: sink, operation: create_order}
options:
  retry: {max_attempts: 3, initial_delay: 200ms, max_delay: 1s, max_age: 1h}
emit: order.sent
"""

_PICKS = """
name: orders-to-warehouse
description: Pick requests for the warehouse, with SKUs translated
trigger: {connection: sink, events: [order.sent]}
mapping:
  order_ref: body.id
  order_number: body.body.order_number
  lines:
    $each: body.body.lines
    $as: line
    $map:
      item: "line.sku | lookup('skus')"
      quantity: line.quantity
lookups:
  skus: {ABC-1: WH-ABC-1, ABC-2: WH-ABC-2, ABC-3: WH-ABC-3}
action: {connection: sink, operation: create_pick}
options:
  retry: {max_attempts: 3, initial_delay: 200ms, max_delay: 1s, max_age: 1h}
"""


def write_project(root: Path, sink_url: str) -> Path:
    """The two-merchant project in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    text = "version: 1\nflows_dir: flows\nworkspaces:\n"
    for ws, name in (("acme", "Acme Apparel"), ("globex", "Globex Goods")):
        text += _WORKSPACE.format(ws=ws, name=name, secret=SECRETS[ws], sink=sink_url)
    (root / "crossdock.yaml").write_text(text)
    d = root / "flows"
    d.mkdir(parents=True, exist_ok=True)
    for ws in ("acme", "globex"):
        (d / f"{ws}-orders-to-sink.yaml").write_text(f"workspace: {ws}\n" + _ORDERS)
        (d / f"{ws}-orders-to-warehouse.yaml").write_text(f"workspace: {ws}\n" + _PICKS)
    return root


def create_users(database_url: str) -> None:
    """Create :data:`USERS` in the hub's database (after the project was applied)."""
    from crossdock.console.users import create_user, grant
    from crossdock.store.database import Database

    db = Database(database_url)
    try:

        def write(conn: Any) -> None:
            for name, roles in USERS.items():
                create_user(conn, name, PASSWORD, name.capitalize())
                for ws, role in roles.items():
                    grant(conn, name, ws, role)

        db.write_sync(write)
    finally:
        db.close()


def order(order_id: str, skus: list[str], version: int = 1) -> dict[str, Any]:
    """A shop order with one line per SKU."""
    return {
        "id": order_id,
        "version": version,
        "name": f"#{order_id}",
        "currency": "eur",
        "line_items": [{"sku": s, "quantity": 1 + i} for i, s in enumerate(skus)],
    }


class ConsoleHub:
    """The running hub (``crossdock serve``), the sink and the project."""

    def __init__(self, hub: Hub, sink: Sink, project: Path, database_url: str) -> None:
        self.hub = hub
        self.sink = sink
        self.project = project
        self.database_url = database_url
        self.url = hub.url

    def send(self, ws: str, body: dict[str, Any], event_type: str = "order.created") -> None:
        """Send a signed webhook from the workspace's shop; it must be acknowledged."""
        raw = json.dumps(body).encode()
        sig = hmac.new(SECRETS[ws].encode(), raw, hashlib.sha256).hexdigest()
        headers = {
            "X-Signature": sig,
            "X-Event-Type": event_type,
            "X-Event-Id": f"{body['id']}-{body.get('version', 1)}-{event_type}",
            "Content-Type": "application/json",
        }
        r = httpx.post(f"{self.url}/hooks/{ws}/shop", content=raw, headers=headers, timeout=10)
        r.raise_for_status()

    def picks(self, ws: str) -> list[dict[str, Any]]:
        """The picks the sink received for a workspace."""
        return self.sink.effects(f"{ws}-picks")

    def wait(self, check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
        """Poll ``check()`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def client(self, username: str | None = None) -> httpx.Client:
        """An HTTP client, signed in as ``username`` when given (cookies kept)."""
        c = httpx.Client(base_url=self.url, timeout=15, follow_redirects=False)
        if username is not None:
            sign_in(c, username)
        return c


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """Sign ``client`` in through the login form; returns the final answer."""
    form = client.get("/console/login")
    m = CSRF_RE.search(form.text)
    assert m, "the sign-in form has no CSRF token"
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": m.group(1)},
    )


def csrf_of(client: httpx.Client, path: str) -> str:
    """The CSRF token of the signed-in session, read from a page."""
    m = CSRF_RE.search(client.get(path).text)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


@contextmanager
def running_console_hub(workdir: Path, database_url: str) -> Iterator[ConsoleHub]:
    """Start the sink and the hub on ``database_url`` with the project and users."""
    sink = Sink(workdir)
    project = write_project(workdir / "project", sink.url)
    hub = Hub(project, database_url, workdir)
    try:
        hub.start()
        create_users(database_url)
        yield ConsoleHub(hub, sink, project, database_url)
    finally:
        hub.stop()
        sink.stop()
        shutil.rmtree(project / ".crossdock", ignore_errors=True)
