"""The project file ``crossdock.yaml``: workspaces, connections and their settings.

Names are imported lazily so that ``crossdock.project.yamlsrc`` can be used by the flow
layer without loading the project models (which themselves use flow expressions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossdock.project.config import (
        AuthConfig,
        BasicAuth,
        BearerAuth,
        ConnectionConfig,
        HeaderAuth,
        InboundConfig,
        LookupCall,
        NoAuth,
        OperationConfig,
        OutboundConfig,
        Project,
        RateLimitConfig,
        Workspace,
        connection_config_from_dict,
        load_project,
        merge_secrets,
        parse_project_text,
        split_secrets,
    )
    from crossdock.project.yamlsrc import ConfigError, ConfigIssue

__all__ = [
    "AuthConfig",
    "BasicAuth",
    "BearerAuth",
    "ConfigError",
    "ConfigIssue",
    "ConnectionConfig",
    "HeaderAuth",
    "InboundConfig",
    "LookupCall",
    "NoAuth",
    "OperationConfig",
    "OutboundConfig",
    "Project",
    "RateLimitConfig",
    "Workspace",
    "connection_config_from_dict",
    "load_project",
    "merge_secrets",
    "parse_project_text",
    "split_secrets",
]


def __getattr__(name: str) -> Any:
    if name in ("ConfigError", "ConfigIssue"):
        from crossdock.project import yamlsrc

        return getattr(yamlsrc, name)
    if name in __all__:
        from crossdock.project import config

        return getattr(config, name)
    raise AttributeError(f"module 'crossdock.project' has no attribute {name!r}")
