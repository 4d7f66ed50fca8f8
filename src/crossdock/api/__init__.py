"""The REST API, mounted at ``/api/v1``: workspaces, connections, flows, the queue and its
exceptions, replay and KPIs. Every route needs an API key of the workspace it names."""

from crossdock.api.app import create_api
from crossdock.api.context import ApiContext

__all__ = ["ApiContext", "create_api"]
