"""Connector settings: a typed model per connector, secrets typed as secrets.

A connector declares ``settings_model = MySettings`` where ``MySettings`` subclasses
:class:`Settings`. Fields typed ``SecretStr`` are credentials: the hub stores them
encrypted apart from the other settings, never logs them and redacts them from the
audit trail (the connection's redactor is built from :func:`secret_values`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["Settings", "secret_values"]


class Settings(BaseModel):
    """Base of every connector's settings (unknown keys are errors, values frozen)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def secret_values(obj: Any) -> list[str]:
    """Every non-empty secret string inside a settings model (for redaction)."""
    out: list[str] = []
    if isinstance(obj, SecretStr):
        v = obj.get_secret_value()
        if v:
            out.append(v)
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            out.extend(secret_values(getattr(obj, name)))
    elif isinstance(obj, dict):
        for v in obj.values():
            out.extend(secret_values(v))
    elif isinstance(obj, list | tuple):
        for v in obj:
            out.extend(secret_values(v))
    return out
