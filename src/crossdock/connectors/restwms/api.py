"""The WMS client: auth, rate limit and error rules from the definition, on the SDK's
:class:`~crossdock.sdk.client.VendorClient`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from crossdock.connectors.restwms.definition import SITE, CompiledRule
from crossdock.connectors.restwms.settings import (
    ApiKeyAuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    RestWmsSettings,
)
from crossdock.flows.failures import MappingFailure, evaluate
from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.auth import ApiKeyAuth, BearerAuth
from crossdock.sdk.client import VendorClient, VendorResponse, default_classify
from crossdock.sdk.errors import ActionRefused, VendorError
from crossdock.sdk.ratelimits import LeakyBucket, RateModel, Unlimited
from crossdock.security.redact import Redactor

__all__ = ["WmsApi", "build_auth", "build_rate"]

MAX_RATE_LIMIT_RETRIES = 5
"""How many 429s in a row one list request waits out before giving up."""
MAX_RETRY_AFTER = 60.0


def build_auth(settings: RestWmsSettings) -> httpx.Auth | None:
    """The ``httpx.Auth`` for the definition's ``auth``."""
    a = settings.auth
    if isinstance(a, ApiKeyAuthConfig):
        return ApiKeyAuth(a.header, a.key.get_secret_value())
    if isinstance(a, BearerAuthConfig):
        return BearerAuth(a.token.get_secret_value())
    if isinstance(a, BasicAuthConfig):
        return httpx.BasicAuth(a.username, a.password.get_secret_value())
    return None


def build_rate(settings: RestWmsSettings) -> RateModel:
    """A leaky bucket at the WMS's published limit (or none; 429s are honoured anyway)."""
    r = settings.rate_limit
    if r is None:
        return Unlimited()
    return LeakyBucket(capacity=r.burst or max(1.0, r.per_second), leak_rate=r.per_second)


def match_rule(
    rules: list[CompiledRule], status: int | None, body: Any
) -> tuple[str, str, str] | None:
    """``(category, reason, fix)`` of the first error rule matching this answer."""
    if status is None or 200 <= status < 300:
        return None
    ctx = {"status": status, "response": body if body is not None else {}}
    for rule in rules:
        if rule.statuses and status not in rule.statuses:
            continue
        if rule.when is not None:
            try:
                if not evaluate(rule.when, ctx, field="when", line=0, site=SITE):
                    continue
            except MappingFailure:
                continue  # the answer lacks what the rule looks at: not this rule
        try:
            reason = rule.reason.render(ctx, "reason")
            fix = rule.fix.render(ctx, "fix")
        except MappingFailure as failure:
            reason = f"The warehouse refused the request (HTTP {status}): {failure.reason}"
            fix = "Check the error rule in the connection's definition."
        return rule.category, reason, fix
    return None


class WmsApi:
    """Calls the WMS for one connection."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: RestWmsSettings,
        *,
        connection: str,
        redactor: Redactor,
    ) -> None:
        self.settings = settings
        self.rules: list[CompiledRule] = settings.compiled.rules
        self.client = VendorClient(
            http,
            connection=connection,
            base_url=settings.base_url,
            auth=build_auth(settings),
            rate=build_rate(settings),
            classify=self.classify,
            redactor=redactor,
            timeout=settings.timeout_seconds,
        )

    def classify(self, response: httpx.Response, body: Any, connection: str) -> Classified:
        """Error rules first (a refusal with the definition's words), then the hub's."""
        found = match_rule(self.rules, response.status_code, body)
        if found is not None:
            category, reason, fix = found
            return Classified(Outcome.PERMANENT, category, reason, fix)
        return default_classify(response, body, connection)

    def refusal(self, err: VendorError) -> ActionRefused | None:
        """The error rule's refusal for a failed write, if a rule matches."""
        found = match_rule(self.rules, err.status, err.body)
        return ActionRefused(*found) if found is not None else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        endpoint: str | None = None,
        missing_ok: bool = False,
    ) -> VendorResponse:
        """One call (see :meth:`VendorClient.request`)."""
        return await self.client.request(
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            endpoint=endpoint,
            missing_ok=missing_ok,
        )

    async def read(
        self, path: str, params: Mapping[str, Any] | None, *, endpoint: str
    ) -> VendorResponse:
        """A GET for a list page that waits out the WMS's 429s (``Retry-After``): the rate
        model pauses on a 429, so the next attempt starts when the WMS said."""
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            try:
                return await self.client.get(path, params=params, endpoint=endpoint)
            except VendorError as err:
                wait = err.classified.retry_after or 1.0
                if (
                    err.outcome is not Outcome.RATE_LIMITED
                    or attempt == MAX_RATE_LIMIT_RETRIES
                    or wait > MAX_RETRY_AFTER
                ):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
