"""The bench project: webhooks from ``shop`` (unsigned) and ``signed`` (HMAC) reach the
reference sink through one flow each.

- ``shop`` uses ``signature: {scheme: none}`` because wrk's Lua cannot compute an HMAC;
  the ingest phase and the preload of the end-to-end phase send to it.
- ``signed`` uses ``hmac-sha256`` over the raw body (``X-Signature``, hex), like a real
  storefront; the latency phase's open-loop generator signs every request for it.

Both read the event id from ``X-Event-Id``, the record key and version from the body. The
flows copy ``body.sent_at`` into what the sink receives, so the end-to-end latency is
``received_at`` at the sink minus the sender's ``sent_at``.
"""

from __future__ import annotations

from pathlib import Path

WORKSPACE = "bench"
UNSIGNED = "shop"
SIGNED = "signed"
SECRET = "bench-webhook-secret-0123456789"
COLLECTION = "orders"


def hook_path(connection: str = UNSIGNED) -> str:
    """The webhook path of a bench connection."""
    return f"/hooks/{WORKSPACE}/{connection}"


def _inbound(signature: str) -> str:
    return f"""        inbound:
          signature: {signature}
          event_type: "body.type"
          record_key: "body.order.id"
          version: "body.order.version"
          event_id: "headers['x-event-id']"
"""


def _flow(name: str, connection: str) -> str:
    return f"""name: {name}
trigger:
  connection: {connection}
  events: ["order.*"]
mapping:
  order_id: body.order.id
  version: body.order.version
  total: body.order.total
  sent_at: body.sent_at
  event: event.type
action:
  connection: sink
  operation: create_order
options:
  retry: {{max_attempts: 50, initial_delay: 200ms, max_delay: 2s, max_age: 1h}}
"""


def write_project(root: Path, sink_url: str) -> Path:
    """Write the bench project (``crossdock.yaml`` and ``flows/``) to ``root``."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    signed = '{scheme: hmac-sha256, header: X-Signature, encoding: hex, secret: "' + SECRET + '"}'
    (root / "crossdock.yaml").write_text(
        f"""version: 1
workspaces:
  {WORKSPACE}:
    name: Benchmark
    connections:
      {UNSIGNED}:
        connector: http
{_inbound("{scheme: none}")}      {SIGNED}:
        connector: http
{_inbound(signed)}      sink:
        connector: http
        outbound:
          base_url: {sink_url}
          timeout_seconds: 5
          operations:
            create_order:
              method: POST
              path: /records/{COLLECTION}
              idempotency_header: Idempotency-Key
              external_id: "body.id"
              lookup: {{method: GET, path: "/records/{COLLECTION}/by-key/{{idempotency_key}}"}}
"""
    )
    (root / "flows" / "shop-orders.yaml").write_text(_flow("shop-orders", UNSIGNED))
    (root / "flows" / "signed-orders.yaml").write_text(_flow("signed-orders", SIGNED))
    return root
