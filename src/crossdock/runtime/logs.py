"""Logging: structured JSON lines by default, readable lines for a terminal.

Secrets never reach a log line: log calls pass ids and categories, not payloads.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(human: bool | None = None, level: str | None = None) -> None:
    """Configure structlog and the standard library logging once for the process."""
    if human is None:
        human = os.environ.get("CROSSDOCK_LOG_FORMAT", "json") == "human"
    lvl = getattr(logging, (level or os.environ.get("CROSSDOCK_LOG_LEVEL", "INFO")).upper())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
        if human
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info
            if not human
            else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
