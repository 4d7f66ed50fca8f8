"""Retry policy: a strategy object that returns a decision (see procrastinate's retry.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from crossdock.pipeline.outcome import Outcome


@dataclass(frozen=True)
class Policy:
    """Exponential back-off with jitter, bounded by attempts and by age."""

    max_attempts: int = 10
    initial_delay: float = 1.0
    max_delay: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_age: float = 86400.0


@dataclass(frozen=True)
class Decision:
    """Retry at ``retry_at``, or give up with ``reason``."""

    retry_at: float | None
    give_up: str | None = None


def decide(
    policy: Policy,
    outcome: Outcome,
    *,
    failures: int,
    first_seen: float,
    now: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """What to do after a failed attempt. ``failures`` counts failed attempts so far,
    this one included, but not rate-limited ones: a 429 storm must not exhaust retries,
    a backlog drains at the vendor's pace."""
    age = now - first_seen
    if age > policy.max_age:
        return Decision(None, f"gave up after {age / 3600:.1f} h (max age {policy.max_age:g} s)")
    if outcome is not Outcome.RATE_LIMITED and failures >= policy.max_attempts:
        return Decision(None, f"gave up after {failures} attempts")
    n = max(failures, 1)
    delay = min(policy.max_delay, policy.initial_delay * policy.multiplier ** (n - 1))
    if policy.jitter:
        r = (rng or random).uniform(-policy.jitter, policy.jitter)
        delay = max(0.0, delay * (1 + r))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return Decision(now + delay)
