"""Flow files: on event E from connection A, (filter), map, do action X on connection B.

Expressions are Jinja2 expressions in a sandbox, compiled once when a flow is loaded;
:meth:`Flow.accepts` and :meth:`Flow.render` evaluate them for each delivery, and every
failure becomes a :class:`MappingFailure` in plain words.
"""

from crossdock.flows.dryrun import DryRunResult, dry_run
from crossdock.flows.expressions import CONTEXT_NAMES, Expression, compile_expression
from crossdock.flows.failures import MappingFailure
from crossdock.flows.flow import Flow, RenderedAction, parse_flow
from crossdock.flows.keys import idempotency_key
from crossdock.flows.loader import load_flows
from crossdock.flows.spec import Action, FlowOptions, RetryPolicy, Trigger

__all__ = [
    "CONTEXT_NAMES",
    "Action",
    "DryRunResult",
    "Expression",
    "Flow",
    "FlowOptions",
    "MappingFailure",
    "RenderedAction",
    "RetryPolicy",
    "Trigger",
    "compile_expression",
    "dry_run",
    "idempotency_key",
    "load_flows",
    "parse_flow",
]
