"""Load every flow file of a project folder and check them together."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from crossdock.flows.flow import Flow, parse_flow
from crossdock.project.yamlsrc import ConfigError, ConfigIssue, display_path, one_of

if TYPE_CHECKING:
    from crossdock.project.config import ConnectionConfig, Project

__all__ = ["load_flows"]


def load_flows(
    directory: Path, project: Project, env: Mapping[str, str] | None = None
) -> list[Flow]:
    """Parse ``directory/*.yaml`` (and ``*.yml``) against ``project``.

    Beyond each file's own checks: flow names are unique per workspace, and a flow
    triggered by a connection that receives no webhooks must be fed by another flow's
    ``emit``. Raises one ConfigError listing every problem in every file. A missing
    directory means no flows.
    """
    if not directory.is_dir():
        return []
    files = sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in (".yaml", ".yml")
    )
    flows: list[Flow] = []
    issues: list[ConfigIssue] = []
    for path in files:
        source = display_path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(ConfigIssue(source, 1, 1, f"cannot read the file: {exc}", "UTF-8 text"))
            continue
        try:
            flows.append(parse_flow(text, source, project, env=env, file=path.resolve()))
        except ConfigError as exc:
            issues.extend(exc.issues)
    issues.extend(_duplicates(flows))
    issues.extend(_unfed_triggers(flows, project))
    if issues:
        raise ConfigError(issues)
    return flows


def _where(flow: Flow, key: str) -> tuple[int, int]:
    return flow.locations.get(key, (flow.line, 1))


def _duplicates(flows: list[Flow]) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    seen: dict[tuple[str, str], Flow] = {}
    for fl in flows:
        key = (fl.workspace, fl.name)
        first = seen.get(key)
        if first is None:
            seen[key] = fl
            continue
        line, col = _where(fl, "name")
        out.append(
            ConfigIssue(
                fl._site.file,
                line,
                col,
                f"duplicate flow name '{fl.name}' in workspace '{fl.workspace}' "
                f"(already used by {first._site.file})",
                "a name unique in the workspace",
                "name",
            )
        )
    return out


def _connector_feeds(conn: ConnectionConfig) -> bool:
    """Whether a named connector's connection produces events (webhooks or streams)."""
    from crossdock.runtime.connectors import describe

    try:
        d = describe(conn)
    except Exception:
        return True  # its own problems are reported with the project file
    return d.webhooks or bool(conn.streams)


def _unfed_triggers(flows: list[Flow], project: Project) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    for fl in flows:
        ws = project.workspaces.get(fl.workspace)
        if ws is None:
            continue
        conn = ws.connections.get(fl.trigger.connection)
        if conn is None or conn.inbound is not None or conn.poll is not None:
            continue
        if not conn.is_http and _connector_feeds(conn):
            continue
        fed = any(
            other.workspace == fl.workspace
            and other.emit is not None
            and fl.matches(other.action.connection, other.emit)
            for other in flows
        )
        if fed:
            continue
        line, col = _where(fl, "trigger.connection")
        out.append(
            ConfigIssue(
                fl._site.file,
                line,
                col,
                f"connection '{conn.name}' receives no webhooks (it has no 'inbound' "
                "settings) and no flow emits a matching event on it",
                one_of(
                    n for n, c in ws.connections.items() if c.inbound or c.poll or not c.is_http
                )
                + " (or a flow with 'emit:' whose action is on this connection)",
                "trigger.connection",
            )
        )
    return out
