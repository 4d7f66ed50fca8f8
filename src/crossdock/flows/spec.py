"""The parts of a flow file as typed, frozen models: trigger, action, options, retry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from crossdock.flows.durations import DURATION_EXAMPLES, parse_duration

__all__ = ["Action", "FlowFile", "FlowOptions", "RetryPolicy", "Trigger"]


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "duration", "{message}", {"message": str(exc), "expected": DURATION_EXAMPLES}
        ) from None


Duration = Annotated[float, BeforeValidator(_duration)]

_FLOW_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Model):
    """Exponential back-off with jitter, bounded by attempts and by age (seconds)."""

    max_attempts: int = Field(default=10, ge=1)
    initial_delay: Duration = Field(default=1.0, ge=0)
    max_delay: Duration = Field(default=300.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    max_age: Duration = Field(default=86400.0, gt=0)


class FlowOptions(_Model):
    """How a flow's deliveries are scheduled and retried."""

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    ordering: Literal["record", "none"] = "record"
    skip_stale: bool = True
    priority: int = 0


class Trigger(_Model):
    """What starts a flow: event types (exact, ``*`` or globs like ``order.*``) from one
    connection."""

    connection: str = Field(min_length=1)
    events: tuple[str, ...] = Field(min_length=1)

    @field_validator("events", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class Action(_Model):
    """What a flow does: one operation on one connection. ``path_params`` are expressions
    filling the operation path's ``{placeholders}``."""

    connection: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    path_params: dict[str, str] = Field(default_factory=dict)


class FlowFile(_Model):
    """The document of a flow file as written (checked for shape and unknown keys)."""

    name: Annotated[str, Field(pattern=_FLOW_NAME)] | None = None
    workspace: str | None = None
    description: str = ""
    trigger: Trigger
    filter: str | None = None
    mapping: Any = None
    lookups: dict[str, Any] = Field(default_factory=dict)
    action: Action
    options: FlowOptions = Field(default_factory=FlowOptions)
    emit: str | None = Field(default=None, min_length=1)
