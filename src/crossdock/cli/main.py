"""The ``crossdock`` command."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crossdock.runtime.logs import LogFormat

app = typer.Typer(
    help="Crossdock: an integration hub for commerce operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
flows_app = typer.Typer(help="Check and rehearse flow files.", no_args_is_help=True)
exc_app = typer.Typer(help="Work the exception queue.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Run a sandbox system (emulator).", no_args_is_help=True)
secrets_app = typer.Typer(help="Credentials encrypted at rest.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
app.add_typer(exc_app, name="exceptions")
app.add_typer(keys_app, name="keys")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(secrets_app, name="secrets")

console = Console()
err = Console(stderr=True)

LogFormatOpt = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        help="Log lines as json (default) or human; else CROSSDOCK_LOG_FORMAT.",
        case_sensitive=False,
    ),
]


def _log_format(log_format: LogFormat | None) -> None:
    """Re-configure logging when ``--log-format`` was given."""
    if log_format is not None:
        from crossdock.runtime.logs import configure

        configure(log_format=log_format)


ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project", "-p", help="Project folder (with crossdock.yaml).", envvar="CROSSDOCK_PROJECT"
    ),
]
WorkspaceOpt = Annotated[
    str | None, typer.Option("--workspace", "-w", help="Workspace (default: all / the only one).")
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a plain error (no traceback) and exit."""
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _load_project(project: Path) -> Any:
    from crossdock.project.config import load_project
    from crossdock.project.yamlsrc import ConfigError

    try:
        return load_project(project, dict(os.environ))
    except ConfigError as exc:
        root = str((project if project.is_dir() else project.parent).resolve()) + "/"
        for issue in exc.issues:
            # Plain lines (no wrapping), paths relative to the project: easy to grep, click.
            print(str(issue).replace(root, ""), file=sys.stderr)
        raise fail(f"{len(exc.issues)} problem(s) in the project; nothing was changed.") from None
    except FileNotFoundError as exc:
        raise fail(f"{exc}. Run 'crossdock init' to create a project.") from None


def _database(project: Path, proj: Any | None = None) -> Any:
    from crossdock.store.database import Database, database_url_from_env

    default = getattr(proj, "database_url", None) if proj is not None else None
    root = project if project.is_dir() else project.parent
    return Database(database_url_from_env(default), root=root.resolve())


def _box(project: Path) -> Any:
    from crossdock.security.crypto import load_secret_box

    root = project if project.is_dir() else project.parent
    return load_secret_box(os.environ, root / ".crossdock" / "secret.key")


def _open(project: Path, *, apply: bool = False) -> tuple[Any, Any, Any]:
    """Database (migrated), secret box and, when the project exists, the project."""
    from crossdock.runtime.loader import apply_project
    from crossdock.store.migrate import ensure_schema

    proj = None
    has_file = (project / "crossdock.yaml").exists() or project.is_file()
    if has_file:
        proj = _load_project(project)
    db = _database(project, proj)
    ensure_schema(db)
    box = _box(project)
    db.start()
    if apply and proj is not None:
        apply_project(db, proj, box)
    return db, box, proj


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the example project.")] = Path(
        "."
    ),
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write an example project (crossdock.yaml and flows/) to DIRECTORY."""
    src = Path(__file__).resolve().parent.parent / "examples" / "basic"
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "crossdock.yaml").exists() and not force:
        raise fail(f"{directory / 'crossdock.yaml'} exists; use --force to overwrite.")
    for path in src.rglob("*"):
        if path.is_file():
            dest = directory / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    console.print(f"Wrote an example project to [bold]{directory}[/bold].")
    console.print(
        "Next: [bold]crossdock sandbox sink --port 8090 &[/bold] then "
        f"[bold]crossdock serve -p {directory}[/bold]"
    )


@app.command()
def migrate(project: ProjectOpt = Path(".")) -> None:
    """Create or upgrade the database schema."""
    from crossdock.store.migrate import current_revision, upgrade

    db = _database(project)
    upgrade(db)
    console.print(f"Database schema at revision {current_revision(db)}.")
    db.close()


@app.command()
def apply(project: ProjectOpt = Path(".")) -> None:
    """Write the project's workspaces, connections and flows into the database."""
    from crossdock.runtime.loader import apply_project

    db, box, proj = _open(project)
    if proj is None:
        raise fail(f"no crossdock.yaml in {project}")
    counts = apply_project(db, proj, box)
    console.print(
        f"Applied {counts['workspaces']} workspace(s), {counts['connections']} connection(s), "
        f"{counts['flows']} flow(s)."
    )
    db.close()


@app.command()
def serve(
    project: ProjectOpt = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    worker: Annotated[bool, typer.Option(help="Run the worker in this process.")] = True,
    sink_port: Annotated[
        int | None,
        typer.Option(help="Also run the reference sink sandbox on this port (rehearsal)."),
    ] = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Run the hub: webhooks, REST API and worker in one process."""
    _log_format(log_format)

    from crossdock.runtime.hub import Hub

    db, box, _proj = _open(project, apply=True)
    if sink_port is not None:
        from crossdock.emulators.sink import running_sink

        ctx = running_sink(port=sink_port)
        sink = ctx.__enter__()
        console.print(f"Reference sink (sandbox) at {sink.url}")
    retention = float(os.environ.get("CROSSDOCK_AUDIT_RETENTION_DAYS", "30"))
    hub = Hub(db, box, root=project.resolve(), run_worker=worker, retention_days=retention)
    reg = hub.registry()
    for ws in reg.workspaces.values():
        for c in ws.connections.values():
            if c.can_receive():
                console.print(
                    f"Webhooks for [bold]{ws.id}/{c.name}[/bold]: "
                    f"POST http://{host}:{port}/hooks/{ws.id}/{c.name}"
                )
            if not c.is_http:
                from crossdock.runtime.connectors import describe

                warning = describe(c.config).sunset_warning
                if warning:
                    console.print(f"[yellow]{ws.id}/{c.name}: {warning}[/yellow]")
        console.print(f"Workspace {ws.id}: {len(ws.flows)} flow(s)")
    console.print(
        f"Console: http://{host}:{port}/console/   API: http://{host}:{port}/api/v1/docs   "
        f"Database: {_safe_url(db.url)}"
    )
    from crossdock.cli.sandbox import run_server

    run_server(hub.asgi(), host, port, timeout_graceful_shutdown=10)


def _metrics_server(hub: Any, host: str, port: int) -> Any:
    """A small HTTP server for a worker process: /metrics, /healthz, /readyz."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    from crossdock.runtime.metrics import metrics_endpoint

    app = Starlette(
        routes=[
            Route("/metrics", metrics_endpoint(hub)),
            Route("/healthz", hub._healthz),
            Route("/readyz", hub._readyz),
        ]
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return uvicorn.Server(config)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("worker")
def worker_cmd(
    project: ProjectOpt = Path("."),
    max_inflight: Annotated[int, typer.Option(help="Deliveries in flight at once.")] = 256,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this worker's /metrics, /healthz and /readyz on this port."),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "127.0.0.1",
    log_format: LogFormatOpt = None,
) -> None:
    """Run a worker only (PostgreSQL: run several, on several machines)."""
    _log_format(log_format)
    from crossdock.runtime.hub import Hub

    db, box, _proj = _open(project)
    if db.is_sqlite:
        err.print(
            "[yellow]note:[/yellow] on SQLite run the worker inside 'crossdock serve'; "
            "a separate worker competes for the single writer."
        )
    hub = Hub(db, box, root=project.resolve(), worker_options={"max_inflight": max_inflight})

    async def main() -> None:
        async with hub.lifespan():
            server = None
            if metrics_port is not None:
                server = _metrics_server(hub, metrics_host, metrics_port)
                asyncio.get_running_loop().create_task(server.serve())
                console.print(f"Metrics: http://{metrics_host}:{metrics_port}/metrics")
            console.print(f"Worker {hub.worker.id if hub.worker else ''} running. Ctrl-C stops.")
            try:
                await asyncio.Event().wait()
            finally:
                if server is not None:
                    server.should_exit = True

    try:
        import uvloop

        uvloop.run(main())
    except KeyboardInterrupt:
        pass


@flows_app.command("validate")
def flows_validate(project: ProjectOpt = Path(".")) -> None:
    """Check crossdock.yaml and every flow file; report file, line, problem and fix."""
    proj = _load_project(project)
    n = len(proj.flows)
    conns = sum(len(w.connections) for w in proj.workspaces.values())
    console.print(
        f"[green]ok[/green]: {len(proj.workspaces)} workspace(s), {conns} connection(s), "
        f"{n} flow(s) are valid."
    )


@flows_app.command("dry-run")
def flows_dry_run(
    flow: Annotated[str, typer.Argument(help="Flow name.")],
    project: ProjectOpt = Path("."),
    workspace: WorkspaceOpt = None,
    event: Annotated[int | None, typer.Option(help="Use this stored event.")] = None,
    body: Annotated[Path | None, typer.Option(help="Use this JSON file as the event body.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type for --body.")] = None,
) -> None:
    """Show exactly what a flow would send for an event, without sending it."""
    from crossdock.cli.dryrun import run_dry_run

    db, _box, proj = _open(project)
    try:
        result = run_dry_run(db, proj, flow, workspace, event, body, event_type)
    except LookupError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()
    console.print_json(json.dumps(result, default=str))


@exc_app.command("list")
def exceptions_list(
    project: ProjectOpt = Path("."),
    workspace: WorkspaceOpt = None,
    all_states: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List open exceptions, newest first."""
    from crossdock.cli import ops

    db, _box, _proj = _open(project)
    rows = db.read_sync(lambda c: ops.list_exceptions(c, workspace, all_states))
    db.close()
    if as_json:
        print(json.dumps(rows, default=str))
        return
    t = Table("id", "workspace", "flow", "record", "category", "reason", "state")
    for r in rows:
        t.add_row(
            str(r["id"]),
            r["workspace"],
            r["flow"],
            r["record_key"],
            r["category"],
            r["reason"],
            r["state"],
        )
    console.print(t)


@exc_app.command("show")
def exceptions_show(exception_id: int, project: ProjectOpt = Path(".")) -> None:
    """Show one exception: what went wrong, how to fix it, the event and last attempt."""
    from crossdock.cli import ops

    db, _box, _proj = _open(project)
    data = db.read_sync(lambda c: ops.show_exception(c, exception_id))
    db.close()
    if data is None:
        raise fail(f"no exception {exception_id}")
    console.print(f"[bold]Exception {exception_id}[/bold] ({data['category']}, {data['state']})")
    console.print(f"[bold]What happened:[/bold] {data['reason']}")
    console.print(f"[bold]How to fix:[/bold] {data['fix']}")
    console.print_json(json.dumps(data, default=str))


def _exception_action(exception_id: int, project: Path, action: str, note: str) -> None:
    from crossdock.cli import ops

    db, _box, _proj = _open(project)
    try:
        msg = db.write_sync(lambda c: ops.exception_action(c, exception_id, action, note))
    except ops.ActionError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()
    console.print(msg)


@exc_app.command("retry")
def exceptions_retry(exception_id: int, project: ProjectOpt = Path(".")) -> None:
    """Make the exception's delivery due again."""
    _exception_action(exception_id, project, "retry", "")


@exc_app.command("resolve")
def exceptions_resolve(
    exception_id: int,
    project: ProjectOpt = Path("."),
    note: Annotated[str, typer.Option(help="Why it is resolved.")] = "resolved from the CLI",
) -> None:
    """Close the exception without delivering (it was handled another way)."""
    _exception_action(exception_id, project, "resolve", note)


@exc_app.command("skip")
def exceptions_skip(
    exception_id: int,
    project: ProjectOpt = Path("."),
    note: Annotated[str, typer.Option(help="Why it is skipped.")] = "skipped from the CLI",
) -> None:
    """Skip the delivery for good."""
    _exception_action(exception_id, project, "skip", note)


@app.command()
def replay(
    project: ProjectOpt = Path("."),
    workspace: WorkspaceOpt = None,
    event: Annotated[list[int] | None, typer.Option(help="Event id (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO 8601).")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and show delivery progress.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 600,
) -> None:
    """Deliver events again: by id, by time window or by flow."""
    from crossdock.cli.replaycmd import run_replay

    db, box, _proj = _open(project)
    try:
        run_replay(db, box, project, workspace, event, since, until, flow, wait, timeout, console)
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()


@app.command()
def status(
    project: ProjectOpt = Path("."),
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Counts by state, and the check received = succeeded + skipped + in progress + exceptions."""
    from crossdock.api.kpis import status_counts
    from crossdock.cli import ops

    db, _box, _proj = _open(project)
    data = db.read_sync(lambda c: status_counts(c, workspace))
    data["waiting"] = db.read_sync(lambda c: ops.waiting_reasons(c, workspace))
    db.close()
    if as_json:
        print(json.dumps(data))
        return
    t = Table("", "count")
    for k in ("events", "received", "succeeded", "skipped", "in_progress", "exceptions"):
        t.add_row(k, str(data[k]))
    console.print(t)
    mark = "[green]holds[/green]" if data["balanced"] else "[red]BROKEN[/red]"
    console.print(
        f"received {data['received']} = succeeded {data['succeeded']} + skipped "
        f"{data['skipped']} + in progress {data['in_progress']} + exceptions "
        f"{data['exceptions']}: {mark}"
    )
    for w in data["waiting"]:
        console.print(
            f"[yellow]{w['deliveries']} waiting to retry[/yellow] "
            f"(next in {w['next_attempt_in']:.0f} s): {w['reason']}",
            highlight=False,
        )
    if not data["balanced"]:
        raise typer.Exit(2)


@app.command("send")
def send_cmd(
    connection: Annotated[str, typer.Argument(help="WORKSPACE/CONNECTION receiving webhooks.")],
    project: ProjectOpt = Path("."),
    hub: Annotated[str, typer.Option(help="The hub's base URL.")] = "http://127.0.0.1:8080",
    body: Annotated[Path | None, typer.Option(help="JSON body (default: a sample order).")] = None,
    header: Annotated[
        list[str] | None, typer.Option(help="Extra header 'Name: value' (repeatable).")
    ] = None,
    count: Annotated[int, typer.Option(help="Sample orders to send.")] = 1,
    sku: Annotated[str | None, typer.Option(help="Use this SKU in sample orders.")] = None,
    event_type: Annotated[
        str, typer.Option("--type", help="X-Event-Type of sample orders.")
    ] = "order.created",
) -> None:
    """Send a signed test webhook to a running hub, as the vendor would."""
    from crossdock.cli.send import sample_order, send

    proj = _load_project(project)
    ws_id, _, name = connection.partition("/")
    ws = proj.workspaces.get(ws_id)
    cfg = ws.connections.get(name) if ws else None
    if cfg is None or cfg.inbound is None:
        raise fail(f"no connection '{connection}' receiving webhooks in {project}")
    extra = {}
    for h in header or []:
        k, sep, v = h.partition(":")
        if not sep:
            raise fail(f"header '{h}' is not 'Name: value'")
        extra[k.strip()] = v.strip()
    url = f"{hub.rstrip('/')}/hooks/{ws_id}/{name}"
    bodies: list[Any]
    if body is not None:
        try:
            bodies = [json.loads(body.read_text())]
        except (OSError, json.JSONDecodeError) as exc:
            raise fail(f"{body}: not a readable JSON file ({exc})") from None
    else:
        start = int(time.time() * 1000) % 10**9  # a fresh order number per order
        bodies = [sample_order(start + i, sku=sku) for i in range(count)]
        extra.setdefault("X-Event-Type", event_type)
    import httpx

    for b in bodies:
        try:
            r = send(url, cfg.inbound.signature, b, extra)
        except httpx.TransportError as exc:
            raise fail(
                f"cannot reach the hub at {hub}: {exc}. Is 'crossdock serve' running?"
            ) from None
        console.print(f"{r.status_code} {r.text}")


@app.command()
def schema(
    record: Annotated[str | None, typer.Argument(help="order, product, shipment, ...")] = None,
) -> None:
    """Print the JSON Schema of the canonical model."""
    from crossdock.model.jsonschema import canonical_json_schema

    try:
        print(json.dumps(canonical_json_schema(record), indent=2))
    except (KeyError, ValueError) as exc:
        raise fail(str(exc)) from None


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace.")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "admin",
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "cli",
    project: ProjectOpt = Path("."),
) -> None:
    """Create an API key (shown once; stored hashed)."""
    from crossdock.api.keys import create_api_key

    if role not in ("viewer", "operator", "admin"):
        raise fail(f"unknown role '{role}': expected viewer, operator or admin")
    db, _box, _proj = _open(project, apply=True)
    key = create_api_key(db, workspace, name, role)
    db.close()
    console.print(f"API key for {workspace} ({role}); it is shown only now:")
    print(key)


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new encryption key. Put it FIRST in CROSSDOCK_SECRET_KEYS (comma-separated),
    keep the old ones after it, then run 'crossdock secrets rotate'."""
    from crossdock.security.crypto import generate_key

    print(generate_key())


@secrets_app.command("rotate")
def secrets_rotate(project: ProjectOpt = Path(".")) -> None:
    """Re-encrypt every stored credential with the newest key (the first one)."""
    from crossdock.store.secrets import rotate_all

    db, box, _proj = _open(project)
    try:
        done, total = rotate_all(db, box)
    finally:
        db.close()
    console.print(
        f"Re-encrypted {done} of {total} connection(s) with the newest key; the older keys can "
        "be removed once every process runs with the new list."
    )


@sandbox_app.command("sink")
def sandbox_sink(
    host: Annotated[str, typer.Option(help="Address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8090,
    token: Annotated[str | None, typer.Option(help="Require this bearer token.")] = None,
    rate_limit: Annotated[float | None, typer.Option(help="Requests per second.")] = None,
    burst: Annotated[int | None, typer.Option(help="Burst size.")] = None,
) -> None:
    """Run the reference sink: records what it receives, dedups, fails on request."""

    from crossdock.emulators.sink import create_sink_app

    console.print(f"Reference sink on http://{host}:{port} (control API under /_sink/)")
    from crossdock.cli.sandbox import run_server

    run_server(create_sink_app(token=token, rate_limit=rate_limit, burst=burst), host, port)


connections_app = typer.Typer(help="Connections of the project.", no_args_is_help=True)
app.add_typer(connections_app, name="connections")


@app.command("connectors")
def connectors_cmd() -> None:
    """List the installed connectors: kind, vendor API version and its sunset."""
    from crossdock.cli.connectors import list_connectors

    list_connectors(console)


@connections_app.command("test")
def connections_test(project: ProjectOpt = Path("."), workspace: WorkspaceOpt = None) -> None:
    """Call each connection's system once with its credentials and say what worked."""
    from crossdock.cli.connectors import test_connections

    proj = _load_project(project)
    failures = test_connections(console, proj, workspace)
    if failures:
        raise typer.Exit(1)


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Project folder for the demo (written once).")
    ] = Path("crossdock-demo"),
    rate: Annotated[float, typer.Option(help="Orders per second to place.")] = 2.0,
    orders: Annotated[int, typer.Option(help="Stop after this many orders (0: no limit).")] = 0,
    duration: Annotated[float, typer.Option(help="Stop after these seconds (0: Ctrl-C).")] = 0.0,
    port: Annotated[int, typer.Option(help="The hub's port.")] = 8080,
    failures: Annotated[
        float, typer.Option(help="Share of orders designed to fail for business reasons.")
    ] = 0.06,
    pick_delay: Annotated[float, typer.Option(help="Warehouse pick-and-pack seconds.")] = 1.0,
    duplicates: Annotated[
        float, typer.Option(help="Share of webhooks the sandboxes send twice.")
    ] = 0.05,
    drain: Annotated[
        float, typer.Option(help="Seconds to let the chain finish at the end.")
    ] = 60.0,
    live: Annotated[bool, typer.Option(help="Live table (else a line every 5 s).")] = True,
    shopify_plan: Annotated[
        str, typer.Option(help="Shopify API limits: standard, advanced or plus.")
    ] = "standard",
    carrier_rpm: Annotated[
        int, typer.Option(help="ShipEngine API limit, requests per minute.")
    ] = 200,
    fixed_ports: Annotated[
        bool,
        typer.Option(help="Sandboxes on ports 8101-8104 (the project's defaults) or random."),
    ] = True,
    fresh: Annotated[bool, typer.Option(help="Start from an empty project folder.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the final figures as JSON here.")] = None,
) -> None:
    """Run the order-to-cash chain: Shopify, a WMS, ShipEngine and Odoo sandboxes and the
    hub on SQLite, with generated orders and a live summary. Ctrl-C stops it."""
    from crossdock.demo.run import DemoOptions, prepare_project, run_demo
    from crossdock.demo.sandbox import SHOPIFY_PLANS

    if shopify_plan not in SHOPIFY_PLANS:
        raise fail(f"unknown Shopify plan '{shopify_plan}': expected {', '.join(SHOPIFY_PLANS)}")
    prepare_project(directory.resolve(), fresh=fresh)
    opts = DemoOptions(
        directory=directory,
        rate=rate,
        orders=orders,
        duration=duration,
        port=port,
        failure_share=failures,
        pick_delay=pick_delay,
        duplicates=duplicates,
        drain=drain,
        live=live,
        shopify_plan=shopify_plan,
        carrier_rpm=carrier_rpm,
        sandbox_ports=fixed_ports,
    )
    result = run_demo(opts, console)
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
    if result.get("complete", 0) == 0:
        raise typer.Exit(1)


def _register_sandboxes() -> None:
    from crossdock.cli.sandbox import register

    register(sandbox_app)


_register_sandboxes()
from crossdock.cli.alerts import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")


def _register_users() -> None:
    from crossdock.cli.users import users_app

    app.add_typer(users_app, name="users")


_register_users()


@app.command()
def bench(
    database: Annotated[str, typer.Option(help="sqlite, postgresql, or both")] = "sqlite",
    seconds: Annotated[float, typer.Option(help="Duration of each phase.")] = 10.0,
    runs: Annotated[int, typer.Option(help="Repetitions; medians are reported.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Write results as JSON here.")] = None,
) -> None:
    """Measure ingest rate, end-to-end throughput, latency and memory."""
    from crossdock.bench.runner import main as bench_main

    code = bench_main(database=database, seconds=seconds, runs=runs, out=out, console=console)
    raise typer.Exit(code)


def run() -> None:
    """Entry point that turns unexpected errors into one plain line."""
    from crossdock.runtime.logs import configure

    configure()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # no stack traces for users, unless they ask
        if os.environ.get("CROSSDOCK_DEBUG"):
            raise
        err.print(
            f"[red]error:[/red] {type(exc).__name__}: {exc}\n"
            "This is a bug in Crossdock; set CROSSDOCK_DEBUG=1 to see the details.",
            highlight=False,
        )
        sys.exit(1)


_ = time
