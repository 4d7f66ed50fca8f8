"""The vendor client: one injected ``httpx.AsyncClient``, one place for outcomes.

A connector builds a :class:`VendorClient` with its base URL, auth strategy, rate-limit
model and (optionally) its own ``classify`` function. Every call:

1. waits for the rate-limit model;
2. sends through the injected ``httpx.AsyncClient`` (tests inject one pointed at an
   emulator, in-process over ``httpx.ASGITransport`` or over a real socket);
3. is classified ONCE (``classify``: vendor answer -> outcome category);
4. is recorded, redacted, in the current :class:`Recorder` (the audit trail);
5. returns a :class:`VendorResponse`, or raises :class:`VendorError`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from crossdock.pipeline.outcome import Classified, Outcome, classify_error, classify_response
from crossdock.sdk.auth import TokenRequestFailed
from crossdock.sdk.errors import VendorError
from crossdock.sdk.ratelimits import RateModel, Unlimited
from crossdock.security.redact import Redactor

__all__ = [
    "Classify",
    "Exchange",
    "Recorder",
    "VendorClient",
    "VendorResponse",
    "default_classify",
    "recording",
]

MAX_AUDIT_BODY = 64 * 1024


@dataclass
class Exchange:
    """One HTTP exchange with a vendor, redacted, as the audit trail keeps it."""

    method: str
    url: str
    status: int | None
    latency_ms: float
    started_at: float
    outcome: str
    error: str | None
    request_headers: dict[str, str]
    request_body: str
    response_headers: dict[str, str]
    response_body: str


@dataclass
class Recorder:
    """Collects the exchanges made while it is current (see :func:`recording`)."""

    exchanges: list[Exchange] = field(default_factory=list)


_current: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "crossdock_recorder", default=None
)


@contextmanager
def recording() -> Iterator[Recorder]:
    """Record every vendor exchange made inside the block (this task only)."""
    rec = Recorder()
    token = _current.set(rec)
    try:
        yield rec
    finally:
        _current.reset(token)


@dataclass
class VendorResponse:
    """A successful vendor answer."""

    status: int
    headers: httpx.Headers
    body: Any
    text: str
    response: httpx.Response


Classify = Callable[[httpx.Response, Any, str], Classified]


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(x) for x in value)
    return str(value)


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "detail", "error_description", "error", "errors"):
            v = body.get(key)
            if isinstance(v, str) and v:
                return v[:300]
            if isinstance(v, dict) and isinstance(v.get("message"), str):
                return str(v["message"])[:300]
            if isinstance(v, dict) and v:
                # {"errors": {"title": ["can't be blank"]}} (Shopify REST 422)
                return "; ".join(f"{k}: {_flat(x)}" for k, x in v.items())[:300]
            if isinstance(v, list) and v:
                first = v[0]
                if isinstance(first, dict):
                    return str(first.get("message") or first)[:300]
                return str(first)[:300]
    return ""


def default_classify(response: httpx.Response, body: Any, connection: str) -> Classified:
    """HTTP status first (the hub's shared rules), with the vendor's message as detail."""
    detail = _detail(body)
    # A plain-text error ("Invalid SKU") is the vendor's message too; HTML is not.
    if (
        not detail
        and body is None
        and not response.is_success
        and response.headers.get("content-type", "").startswith("text/plain")
    ):
        detail = response.text.strip()[:300]
    return classify_response(response.status_code, response.headers, connection, detail)


def _token_failure(exc: httpx.HTTPStatusError, connection: str) -> Classified:
    """The token endpoint (OAuth2) refused or failed: classify by its answer."""
    response = exc.response
    try:
        body = response.json()
    except ValueError:
        body = None
    cl = classify_response(response.status_code, response.headers, connection, _detail(body))
    if cl.outcome in (Outcome.RETRYABLE, Outcome.RATE_LIMITED) or not isinstance(
        exc, TokenRequestFailed
    ):
        return cl
    where = f"'{connection}'"
    said = f" It said: {_detail(body)}" if _detail(body) else ""
    return Classified(
        Outcome.PERMANENT,
        "auth",
        f"{where} refused to issue an access token ({exc}).{said}",
        f"Update the credentials of connection {where}, then retry the delivery.",
    )


def _truncate(data: bytes) -> str:
    text = data[:MAX_AUDIT_BODY].decode("utf-8", "replace")
    if len(data) > MAX_AUDIT_BODY:
        text += f"... [{len(data) - MAX_AUDIT_BODY} more bytes]"
    return text


class VendorClient:
    """Calls one vendor for one connection."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        connection: str,
        base_url: str,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        rate: RateModel | None = None,
        classify: Classify = default_classify,
        redactor: Redactor | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.http = http
        self.connection = connection
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.headers = dict(headers or {})
        self.rate: RateModel = rate or Unlimited()
        self.classify = classify
        self.redactor = redactor or Redactor()
        self.timeout = timeout
        self.calls = 0

    def url(self, path: str) -> str:
        """An absolute URL for ``path`` (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + (path if path.startswith("/") else "/" + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        endpoint: str | None = None,
        cost: float = 1.0,
        classify: Classify | None = None,
        raise_for_outcome: bool = True,
        missing_ok: bool = False,
    ) -> VendorResponse:
        """Make one call; raise :class:`VendorError` unless it succeeded.

        ``missing_ok``: a 404 is an answer, not a failure (a lookup of something that may
        not exist yet): it is audited as a success and returned with status 404, so the
        connection's error rate and health are not hurt by lookups before a create."""
        endpoint = endpoint or path.split("?")[0]
        await self.rate.before(endpoint, cost)
        hdrs = {"Accept": "application/json", **self.headers, **(headers or {})}
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            hdrs["Content-Type"] = "application/json"
        url = self.url(path)
        if params:
            # Merged into the query the path already has (a Link header's next URL):
            # httpx would otherwise replace that query with ``params``.
            url = str(httpx.URL(url).copy_merge_params(dict(params)))
        started, t0 = time.time(), time.perf_counter()
        self.calls += 1
        response: httpx.Response | None = None
        body: Any = None
        try:
            response = await self.http.request(
                method,
                url,
                content=content,
                data=data,
                headers=hdrs,
                auth=self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=self.timeout,
            )
            if response.content:
                try:
                    body = orjson.loads(response.content)
                except orjson.JSONDecodeError:
                    body = None
            self.rate.after(endpoint, response, body)
            if missing_ok and response.status_code == 404:
                cl = Classified(Outcome.SUCCESS, "ok", "not there", "")
            else:
                cl = (classify or self.classify)(response, body, self.connection)
        except httpx.HTTPStatusError as exc:
            # An auth flow's token request failed (TokenRequestFailed), or a hook raised
            # for a status: classify by that answer.
            cl = _token_failure(exc, self.connection)
        except httpx.HTTPError as exc:
            cl = classify_error(exc, self.connection)
        latency = (time.perf_counter() - t0) * 1000
        self._record(method, url, hdrs, content, response, cl, started, latency)
        if cl.outcome is not Outcome.SUCCESS and raise_for_outcome:
            raise VendorError(cl, response.status_code if response is not None else None, body)
        if response is None:  # only when raise_for_outcome is False and the call failed
            raise VendorError(cl)
        return VendorResponse(response.status_code, response.headers, body, response.text, response)

    def _record(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        response: httpx.Response | None,
        cl: Classified,
        started: float,
        latency: float,
    ) -> None:
        rec = _current.get()
        if rec is None:
            return
        red = self.redactor
        sent = dict(headers)
        if response is not None:
            # What actually left, auth headers included (redacted below).
            sent = {str(k): str(v) for k, v in response.request.headers.items()}
            url = str(response.request.url)
            content = response.request.content or content
        rec.exchanges.append(
            Exchange(
                method=method.upper(),
                url=red.text(url),
                status=response.status_code if response is not None else None,
                latency_ms=latency,
                started_at=started,
                outcome=cl.outcome.value,
                error=None if cl.outcome is Outcome.SUCCESS else red.value(cl.reason),
                request_headers=red.headers(sent),
                request_body=red.text(_truncate(content or b"")),
                response_headers=red.headers(dict(response.headers)) if response else {},
                response_body=red.text(_truncate(response.content)) if response else "",
            )
        )

    async def get(self, path: str, **kwargs: Any) -> VendorResponse:
        """``GET`` (see :meth:`request`)."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> VendorResponse:
        """``POST`` (see :meth:`request`)."""
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> VendorResponse:
        """``PUT`` (see :meth:`request`)."""
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> VendorResponse:
        """``PATCH`` (see :meth:`request`)."""
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> VendorResponse:
        """``DELETE`` (see :meth:`request`)."""
        return await self.request("DELETE", path, **kwargs)
