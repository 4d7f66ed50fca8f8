"""Logging: structured JSON lines by default, readable lines for a terminal.

Every line is one JSON object with ``timestamp``, ``level``, ``logger`` and ``event``.
Around each webhook ingest and each delivery the hub binds (structlog contextvars)
``correlation_id``, ``workspace`` and ``connection`` or ``flow`` and ``delivery``, so
every line about one record carries its correlation id: the same id stored with the
event, its deliveries and the audit trail, and sent to destinations.

The format is ``json`` (default) or ``human``: ``--log-format`` on ``crossdock serve``
and ``crossdock worker``, else ``CROSSDOCK_LOG_FORMAT``. The level is
``CROSSDOCK_LOG_LEVEL`` (default ``info``; ``debug`` adds a line per settled delivery
and per webhook).

Secrets never reach a log line: log calls pass ids, names and categories, not payloads,
headers or vendor answers.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

__all__ = ["LogFormat", "bound", "configure"]


class bound:  # lower case: used like a function, ``with bound(correlation_id=...)``
    """Bind fields to every log line in this context (structlog contextvars) and restore
    them on exit. Cheaper than ``structlog.contextvars.bound_contextvars``, which copies
    the whole context: this is on the path of every webhook and delivery."""

    __slots__ = ("_fields", "_tokens")

    def __init__(self, **fields: Any) -> None:
        self._fields = fields
        self._tokens: Mapping[str, contextvars.Token[Any]] = {}

    def __enter__(self) -> bound:
        self._tokens = structlog.contextvars.bind_contextvars(**self._fields)
        return self

    def __exit__(self, *_exc: object) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


class LogFormat(enum.StrEnum):
    """How log lines look."""

    json = "json"
    human = "human"


class _NamedPrintLogger(structlog.PrintLogger):
    """A print logger that knows its name (for the ``logger`` field)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _Factory:
    def __init__(self, file: TextIO) -> None:
        self.file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        return _NamedPrintLogger(self.file, str(args[0]) if args else "crossdock")


def configure(
    human: bool | None = None,
    level: str | None = None,
    *,
    log_format: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's logging for the process.

    ``log_format`` (``json`` or ``human``) or ``human`` override ``CROSSDOCK_LOG_FORMAT``;
    ``level`` overrides ``CROSSDOCK_LOG_LEVEL``; lines go to ``stream`` (stderr)."""
    if log_format is not None:
        human = LogFormat(log_format) is LogFormat.human
    if human is None:
        human = os.environ.get("CROSSDOCK_LOG_FORMAT", "json").strip().lower() == "human"
    lvl = getattr(logging, (level or os.environ.get("CROSSDOCK_LOG_LEVEL", "INFO")).upper())
    out = stream if stream is not None else sys.stderr
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
        if human
        else structlog.processors.JSONRenderer()
    )
    common: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    exc: structlog.types.Processor = (
        structlog.processors.StackInfoRenderer() if human else structlog.processors.format_exc_info
    )
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *common, exc, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=_Factory(out),
        cache_logger_on_first_use=True,
    )
    # Lines from libraries (alembic, SQLAlchemy, ...) in the same format.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.contextvars.merge_contextvars, *common, exc],
        )
    )
    logging.basicConfig(level=lvl, handlers=[handler], force=True)
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
