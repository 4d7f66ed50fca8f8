"""OpenTelemetry traces: ingest -> delivery -> vendor call (the optional ``otel`` extra).

Off unless asked for, and a no-op when the OpenTelemetry packages are missing:

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set: spans
  go to that collector over OTLP/HTTP (needs ``opentelemetry-exporter-otlp-proto-http``);
- ``CROSSDOCK_OTEL=1``: spans are printed to stdout (the console exporter);
- ``CROSSDOCK_OTEL=0`` turns tracing off whatever else is set.

Spans: ``ingest`` (a webhook from arrival to commit; ``poll`` for a polling round),
``delivery`` (one attempt) and ``vendor call`` (one HTTP exchange of that attempt, a
child of the delivery). One record's spans share one trace even across processes: the
trace id is derived from the event's correlation id, which is stored with the event, and
so is the span id of its ``ingest`` span, which every ``delivery`` span names as its
parent. Follow-up events keep their origin's correlation id, so they join its trace.

Spans carry names, ids, methods, status codes and URLs without their query strings:
never payloads, headers or credentials.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

log = structlog.get_logger("crossdock.tracing")

__all__ = [
    "delivery_span",
    "disable",
    "enable",
    "end_delivery",
    "record_root",
    "reset",
    "safe_url",
    "trace_ids",
    "tracer",
]

_lock = threading.Lock()
_configured = False
_tracer: Any = None
_provider: Any = None
# The ids the next span must take: (trace id, span id), set just around one start_span.
_forced: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "crossdock_forced_span_ids", default=None
)

_ON = ("1", "true", "yes", "on", "console")
_OFF = ("0", "false", "no", "off")


def trace_ids(correlation_id: str) -> tuple[int, int]:
    """The trace id of a correlation id's trace and the span id of its root span
    (``ingest`` or ``poll``): derived, so every process finds the same ones."""
    h = hashlib.sha256(b"crossdock-trace\x1f" + correlation_id.encode()).digest()
    return int.from_bytes(h[:16], "big") or 1, int.from_bytes(h[16:24], "big") or 1


def safe_url(url: str) -> str:
    """``url`` without its query string, fragment and user info (they may hold secrets)."""
    try:
        p = urlsplit(url)
    except ValueError:
        return ""
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{p.port}" if p.port else host
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


# -- set-up ------------------------------------------------------------------------------
def tracer() -> Any | None:
    """The tracer, or None when tracing is off (configured from the environment on first
    use)."""
    if not _configured:
        _configure_from_env(os.environ)
    return _tracer


def _configure_from_env(env: Mapping[str, str]) -> None:
    global _configured, _tracer, _provider
    with _lock:
        if _configured:
            return
        _configured = True
        flag = env.get("CROSSDOCK_OTEL", "").strip().lower()
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if flag in _OFF or (not endpoint and flag not in _ON):
            return
        try:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        except ImportError:
            log.warning(
                "tracing_unavailable",
                reason="the OpenTelemetry packages are not installed: pip install crossdock[otel]",
            )
            return
        exporter: Any
        if endpoint:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError:
                log.warning(
                    "tracing_unavailable",
                    reason="OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not "
                    "installed: pip install opentelemetry-exporter-otlp-proto-http",
                )
                return
            exporter = OTLPSpanExporter()  # reads the OTEL_EXPORTER_OTLP_* variables
        else:
            exporter = ConsoleSpanExporter()
        _provider, _tracer = _build(exporter, batch=True)
        log.info("tracing_enabled", exporter=type(exporter).__name__)


def _build(exporter: Any, *, batch: bool) -> tuple[Any, Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class _DerivedIds(RandomIdGenerator):
        """Random ids, except for the root spans whose ids derive from a correlation id."""

        def generate_span_id(self) -> int:
            forced = _forced.get()
            return forced[1] if forced is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            forced = _forced.get()
            return forced[0] if forced is not None else super().generate_trace_id()

    import crossdock

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "crossdock"),
            "service.version": getattr(crossdock, "__version__", "0"),
        }
    )
    provider = TracerProvider(resource=resource, id_generator=_DerivedIds())
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider, provider.get_tracer("crossdock")


def enable(exporter: Any, *, batch: bool = False) -> Any:
    """Trace to ``exporter`` from now on (tests, embedding); returns the provider.
    ``batch=False`` exports each span as it ends."""
    global _configured, _tracer, _provider
    provider, t = _build(exporter, batch=batch)
    with _lock:
        _configured, _tracer, _provider = True, t, provider
    return provider


def disable() -> None:
    """Stop tracing (spans already ended are flushed)."""
    global _configured, _tracer, _provider
    with _lock:
        provider, _provider = _provider, None
        _configured, _tracer = True, None
    if provider is not None:
        provider.shutdown()


def reset() -> None:
    """Forget the set-up: the environment is read again on next use."""
    global _configured
    disable()
    with _lock:
        _configured = False


# -- spans -------------------------------------------------------------------------------
def record_root(
    name: str,
    correlation_id: str,
    start_ns: int,
    attributes: Mapping[str, Any],
    *,
    error: str | None = None,
) -> None:
    """Record the root span of a correlation id's trace (``ingest``, ``poll``) that
    started at ``start_ns`` (``time.time_ns()``) and ends now."""
    t = tracer()
    if t is None:
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    token = _forced.set(trace_ids(correlation_id))
    try:
        span = t.start_span(
            name,
            kind=SpanKind.SERVER if name == "ingest" else SpanKind.INTERNAL,
            start_time=start_ns,
            attributes={"crossdock.correlation_id": correlation_id, **_clean(attributes)},
        )
    finally:
        _forced.reset(token)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


@contextlib.contextmanager
def delivery_span(correlation_id: str, attributes: Mapping[str, Any]) -> Iterator[Any | None]:
    """A ``delivery`` span for one attempt, a child of the event's ``ingest`` span (in
    whichever process that ran); yields None when tracing is off."""
    t = tracer()
    if t is None:
        yield None
        return
    from opentelemetry import trace

    trace_id, root_id = trace_ids(correlation_id)
    parent = trace.SpanContext(
        trace_id, root_id, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    span = t.start_span(
        "delivery",
        context=ctx,
        attributes={"crossdock.correlation_id": correlation_id, **_clean(attributes)},
    )
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        raise
    finally:
        span.end()


def end_delivery(
    span: Any | None,
    *,
    state: str,
    outcome: str | None,
    attempts: int,
    calls: Sequence[Mapping[str, Any]],
    category: str | None = None,
) -> None:
    """Finish a ``delivery`` span: its result, and one ``vendor call`` child per HTTP
    exchange of the attempt (from its audit rows, with their own start and end)."""
    if span is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    t = tracer()
    if t is not None:
        ctx = trace.set_span_in_context(span)
        for row in calls:
            start = int(float(row["started_at"]) * 1e9)
            attrs: dict[str, Any] = {
                "http.method": str(row.get("method") or ""),
                "http.url": safe_url(str(row.get("url") or "")),
                "crossdock.connection": str(row.get("connection") or ""),
                "crossdock.outcome": str(row.get("outcome") or ""),
            }
            if row.get("status") is not None:
                attrs["http.status_code"] = int(row["status"])
            child = t.start_span(
                "vendor call", context=ctx, kind=SpanKind.CLIENT, start_time=start, attributes=attrs
            )
            if row.get("outcome") != "success":
                child.set_status(Status(StatusCode.ERROR, str(row.get("outcome"))))
            child.end(end_time=start + int(float(row["latency_ms"]) * 1e6))
    span.set_attribute("crossdock.state", state)
    span.set_attribute("crossdock.attempt", attempts)
    if outcome is not None:
        span.set_attribute("crossdock.outcome", outcome)
    if category is not None:
        span.set_attribute("crossdock.exception.category", category)
    if state == "exception":
        span.set_status(Status(StatusCode.ERROR, category or "exception"))


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int and float values only; None is dropped."""
    out: dict[str, Any] = {}
    for k, v in attributes.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, str | bool | int | float) else str(v)
    return out


def now_ns() -> int:
    """The wall clock in nanoseconds, for span start times."""
    return time.time_ns()
