"""The generic ``http`` connector, outbound: one operation = one HTTP request.

An operation declares its method, a path template, an idempotency header, how to read
the record's id at the destination from the answer (the cross-reference), and a
``lookup`` call used to *verify* an uncertain outcome before retrying.

This is the hub's hot path, so it speaks aiohttp directly: measured on the 2-core
reference machine against the reference sink, aiohttp sends ~6,000 requests/s from one
process where httpx sends ~750 (httpx over an aiohttp transport: ~1,900). Vendor
clients, whose vendors allow a few requests a second, use an injected httpx client.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from crossdock.pipeline.outcome import Classified, Outcome, classify_error, classify_response

MAX_AUDIT_BODY = 64 * 1024


@dataclass
class CallResult:
    """One attempt at an operation, as recorded in the audit trail."""

    classified: Classified
    method: str
    url: str
    status: int | None
    latency_ms: float
    started_at: float
    request_headers: dict[str, str]
    request_body: str
    response_headers: dict[str, str]
    response_body: str
    response_json: Any = None
    external_id: str | None = None
    verified: bool = False


def auth_headers(auth: Any) -> dict[str, str]:
    """Headers for the connection's auth settings (bearer, basic, header, none)."""
    if auth is None:
        return {}
    kind = getattr(auth, "type", "none")
    if kind == "bearer":
        return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}
    if kind == "basic":
        raw = f"{auth.username}:{auth.password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    if kind == "header":
        value = (
            auth.value.get_secret_value() if hasattr(auth.value, "get_secret_value") else auth.value
        )
        return {auth.name: value}
    return {}


def fill_path(template: str, params: Mapping[str, Any]) -> str:
    """Fill ``{placeholders}`` in a path template, each value URL-quoted."""
    out = template
    for k, v in params.items():
        if v is not None:
            out = out.replace("{" + k + "}", quote(str(v), safe=""))
    return out


def _truncate(data: bytes) -> str:
    text = data[:MAX_AUDIT_BODY].decode("utf-8", "replace")
    if len(data) > MAX_AUDIT_BODY:
        text += f"... [{len(data) - MAX_AUDIT_BODY} more bytes]"
    return text


def build_request(
    outbound: Any,
    operation: str,
    body: Any,
    path_params: Mapping[str, Any],
    idempotency_key: str,
    correlation_id: str | None = None,
) -> tuple[str, str, dict[str, str], bytes]:
    """The exact request an operation makes: method, URL, headers and body bytes.
    Used to send, and by dry-run to show what would be sent."""
    op = outbound.operations[operation]
    params = {**path_params, "idempotency_key": idempotency_key}
    url = outbound.base_url.rstrip("/") + fill_path(op.path, params)
    headers = {"Content-Type": "application/json"}
    if correlation_id:
        headers["X-Correlation-Id"] = correlation_id
    headers.update(outbound.headers or {})
    headers.update(auth_headers(outbound.auth))
    if op.idempotency_header:
        headers[op.idempotency_header] = idempotency_key
    method = op.method.upper()
    payload = b"" if method in ("GET", "DELETE") and body is None else orjson.dumps(body)
    return method, url, headers, payload


async def perform(
    client: aiohttp.ClientSession,
    *,
    connection: str,
    outbound: Any,
    operation: str,
    body: Any,
    path_params: Mapping[str, Any],
    idempotency_key: str,
    correlation_id: str,
    redact_headers: Callable[[Mapping[str, str]], dict[str, str]],
    redact_text: Callable[[str], str],
    external_id: Callable[[Mapping[str, Any]], Any] | None = None,
) -> list[CallResult]:
    """Send one operation; if its outcome is uncertain and the operation has a
    ``lookup``, verify at the destination. Returns every HTTP exchange made (1 or 2)."""
    method, url, headers, payload = build_request(
        outbound, operation, body, path_params, idempotency_key, correlation_id
    )
    op = outbound.operations[operation]
    params = {**path_params, "idempotency_key": idempotency_key}
    timeout = float(outbound.timeout_seconds)
    first = await _exchange(
        client, connection, method, url, headers, payload, timeout, redact_headers, redact_text
    )
    results = [first]
    if first.classified.outcome is Outcome.UNCERTAIN and op.lookup is not None:
        lk_url = outbound.base_url.rstrip("/") + fill_path(op.lookup.path, params)
        lk_headers = {k: v for k, v in headers.items() if k != "Content-Type"}
        check = await _exchange(
            client,
            connection,
            op.lookup.method.upper(),
            lk_url,
            lk_headers,
            b"",
            timeout,
            redact_headers,
            redact_text,
        )
        if check.status == 200:
            check.classified = Classified(
                Outcome.SUCCESS, "verified", "verified at the destination after a timeout", ""
            )
            check.verified = True
        elif check.status == 404:
            check.classified = Classified(
                Outcome.RETRYABLE,
                "timeout",
                f"'{connection}' did not answer in time and has no record of the request.",
                "Nothing to do: it is safe to send again, and Crossdock will.",
            )
        results.append(check)
    last = results[-1]
    if last.classified.outcome is Outcome.SUCCESS and external_id is not None:
        try:
            value = external_id(
                {
                    "body": last.response_json,
                    "headers": last.response_headers,
                    "status": last.status,
                }
            )
        except Exception:
            value = None
        if value is not None and value != "":
            last.external_id = str(value)
    return results


async def _exchange(
    client: aiohttp.ClientSession,
    connection: str,
    method: str,
    url: str,
    headers: dict[str, str],
    payload: bytes,
    timeout: float,
    redact_headers: Callable[[Mapping[str, str]], dict[str, str]],
    redact_text: Callable[[str], str],
) -> CallResult:
    started = time.time()
    t0 = time.perf_counter()
    status: int | None = None
    resp_headers: dict[str, str] = {}
    resp_body = b""
    resp_json: Any = None
    try:
        async with client.request(
            method,
            url,
            headers=headers,
            data=payload or None,
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0)),
            allow_redirects=False,
        ) as resp:
            status = resp.status
            resp_body = await resp.read()
            resp_headers = {str(k): v for k, v in resp.headers.items()}
            raw_headers: CIMultiDictProxy[str] = resp.headers
        if resp_body:
            try:
                resp_json = orjson.loads(resp_body)
            except orjson.JSONDecodeError:
                resp_json = None
        detail = ""
        if status >= 400 and isinstance(resp_json, dict):
            detail = str(resp_json.get("detail") or resp_json.get("message") or "")[:300]
        classified = classify_response(status, raw_headers, connection, redact_text(detail))
    except Exception as exc:
        classified = classify_error(exc, connection)
    latency = (time.perf_counter() - t0) * 1000
    return CallResult(
        classified=classified,
        method=method,
        url=url,
        status=status,
        latency_ms=latency,
        started_at=started,
        request_headers=redact_headers(headers),
        request_body=redact_text(_truncate(payload)),
        response_headers=redact_headers(resp_headers),
        response_body=redact_text(_truncate(resp_body)),
        response_json=resp_json,
    )
