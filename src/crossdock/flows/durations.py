"""Durations in flow files: ``"500ms"``, ``"1s"``, ``"5m"``, ``"24h"``, ``"1h30m"``,
``"2d"`` or a number of seconds."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["DURATION_EXAMPLES", "parse_duration"]

DURATION_EXAMPLES = "a number of seconds or a duration such as 500ms, 1s, 5m, 24h"

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d))+\s*$")


def parse_duration(value: Any) -> float:
    """Seconds in ``value``; raises ``ValueError`` with a plain message."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            if not _WHOLE.match(text):
                raise ValueError(f"{value!r} is not a duration") from None
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(f"{value!r} is not a duration")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration (it must be zero or more)")
    return seconds
