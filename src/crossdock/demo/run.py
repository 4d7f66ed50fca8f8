"""Run the demo: the sandbox systems, the hub, an order generator and a live summary."""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from crossdock.demo.chain import ChainCounts, read_counts
from crossdock.demo.generator import FAILURE_KINDS, make_order
from crossdock.demo.sandbox import DEFAULT_PORTS, SHOPIFY_PLANS, Sandbox, running_sandbox
from crossdock.testing.processes import Proc, crossdock, wait_http

__all__ = ["DemoOptions", "prepare_project", "run_demo"]


@dataclass
class DemoOptions:
    """What ``crossdock demo`` was asked for."""

    directory: Path
    rate: float = 2.0
    orders: int = 0
    duration: float = 0.0
    port: int = 8080
    failure_share: float = 0.06
    pick_delay: float = 1.0
    duplicates: float = 0.05
    seed: int = 7
    live: bool = True
    drain: float = 60.0
    shopify_plan: str = "standard"
    carrier_rpm: int = 200
    sandbox_ports: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def prepare_project(directory: Path, fresh: bool = False) -> Path:
    """Write the chain example project to ``directory`` (once, or again if ``fresh``)."""
    src = Path(__file__).resolve().parent.parent / "examples" / "chain"
    if fresh and directory.exists():
        shutil.rmtree(directory)
    if not (directory / "crossdock.yaml").exists():
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, directory, dirs_exist_ok=True)
    return directory


@contextlib.contextmanager
def running_hub(project: Path, port: int, env: dict[str, str]) -> Iterator[Proc]:
    """``crossdock serve`` for the project, in its own process."""
    log_dir = project / ".crossdock"
    log_dir.mkdir(parents=True, exist_ok=True)
    proc = Proc(
        crossdock("serve", "--project", str(project), "--port", str(port)),
        log_dir / "demo-hub.log",
        env,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
        yield proc
    finally:
        proc.stop()


class Generator(threading.Thread):
    """Places orders at the storefront emulator at a steady rate."""

    def __init__(self, sandbox: Sandbox, opts: DemoOptions, stop: threading.Event) -> None:
        super().__init__(name="demo-orders", daemon=True)
        self.sandbox = sandbox
        self.opts = opts
        self.stop_event = stop
        self.placed = 0
        self.failures: dict[str, int] = {}
        self.errors = 0
        self.started_at = time.monotonic()
        self.finished_at: float | None = None

    def run(self) -> None:
        rng = random.Random(self.opts.seed)
        url = self.sandbox.url("shop") + "/_emulator/orders"
        interval = 1.0 / self.opts.rate if self.opts.rate > 0 else 0.0
        next_at = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while not self.stop_event.is_set():
                if self.opts.orders and self.placed >= self.opts.orders:
                    break
                failure = None
                if rng.random() < self.opts.failure_share:
                    failure = FAILURE_KINDS[self.placed % len(FAILURE_KINDS)]
                spec = make_order(rng, self.placed + 1, failure)
                try:
                    r = client.post(url, json=spec.body)
                    r.raise_for_status()
                    self.placed += 1
                    if failure:
                        self.failures[failure] = self.failures.get(failure, 0) + 1
                except httpx.HTTPError:
                    self.errors += 1
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop_event.wait(delay)
        self.finished_at = time.monotonic()


def _table(counts: ChainCounts, gen: Generator, hub: dict[str, Any], elapsed: float) -> Table:
    t = Table(title=f"Crossdock demo - {elapsed:5.0f} s", show_edge=False)
    t.add_column("stage")
    t.add_column("count", justify="right")
    t.add_column("where")
    t.add_row("orders placed at the storefront", str(gen.placed), "shop emulator")
    t.add_row("orders at the warehouse", str(counts.wms_orders), "wms emulator")
    t.add_row("shipped by the warehouse", str(counts.shipments), "wms emulator")
    t.add_row("carrier labels", str(counts.labels), "carrier emulator")
    t.add_row("fulfilled with tracking", str(counts.fulfilled), "shop emulator")
    t.add_row("invoiced in the ERP", str(counts.invoices), "erp emulator")
    t.add_row("through the whole chain", str(counts.complete), "")
    t.add_row(
        "[red]exceptions (open)[/red]", str(hub.get("exceptions", 0)), "crossdock exceptions list"
    )
    t.add_row("deliveries in progress", str(hub.get("in_progress", 0)), "crossdock status")
    return t


class HubView:
    """What the hub's database says, read by the demo process (one connection pool for
    the whole run, not one per refresh)."""

    def __init__(self, project: Path) -> None:
        from crossdock.store.database import Database, database_url_from_env

        url = database_url_from_env("sqlite:///.crossdock/crossdock.db")
        self.db = Database(url, root=project)

    def close(self) -> None:
        """Release the connections."""
        self.db.close()

    def counts(self) -> dict[str, Any]:
        """``crossdock status`` figures (empty while the schema is not there yet)."""
        from crossdock.api.kpis import status_counts

        try:
            return self.db.read_sync(lambda c: status_counts(c, None))
        except Exception:
            return {}

    def console_user(self, workspace: str = "acme") -> tuple[str, str]:
        """A console user for the demo (admin of ``workspace``) with a fresh password."""
        import secrets

        from sqlalchemy import select

        from crossdock.console.users import create_user, grant, set_password
        from crossdock.store.tables import users

        password = secrets.token_urlsafe(12)

        def write(conn: Any) -> None:
            if conn.execute(select(users.c.id).where(users.c.username == "demo")).first():
                set_password(conn, "demo", password)
            else:
                create_user(conn, "demo", password, "Demo operator")
            grant(conn, "demo", workspace, "admin")

        self.db.write_sync(write)
        return "demo", password

    def cases(self) -> list[tuple[str, str, int]]:
        """Open exceptions grouped by category and reason, biggest first."""
        from sqlalchemy import func, select

        from crossdock.store.tables import exceptions

        try:
            rows = self.db.read_sync(
                lambda c: c.execute(
                    select(exceptions.c.category, exceptions.c.reason, func.count())
                    .where(exceptions.c.state == "open")
                    .group_by(exceptions.c.category, exceptions.c.reason)
                    .order_by(func.count().desc())
                    .limit(8)
                ).all()
            )
        except Exception:
            return []
        return [(str(a), str(b), int(n)) for a, b, n in rows]


def run_demo(opts: DemoOptions, console: Console) -> dict[str, Any]:
    """Run the demo until Ctrl-C, ``duration`` or ``orders``; return the final figures."""
    project = prepare_project(opts.directory.resolve())
    hub_url = f"http://127.0.0.1:{opts.port}"
    stop = threading.Event()
    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    common = {"time_scale": 0.05, "duplicate_probability": opts.duplicates, "seed": opts.seed}
    options: dict[str, dict[str, Any]] = {
        "wms": {"pick_delay": opts.pick_delay},
        "shop": SHOPIFY_PLANS[opts.shopify_plan],
        "carrier": {"rate_limit": opts.carrier_rpm, "rate_window": 60},
    }
    try:
        ports = DEFAULT_PORTS if opts.sandbox_ports else None
        with running_sandbox(hub_url, ports=ports, options=options, common=common) as sandbox:
            env = {**sandbox.env(), "SHIPENGINE_RPM": str(opts.carrier_rpm), **opts.extra_env}
            console.print(
                "Sandbox systems: "
                + ", ".join(f"{n} {sandbox.url(n)}" for n in ("shop", "wms", "carrier", "erp")),
                highlight=False,
            )
            with running_hub(project, opts.port, env) as hub:
                console.print(
                    f"Hub on {hub_url} (log: {hub.log}); placing {opts.rate:g} orders/s; "
                    f"Shopify {opts.shopify_plan} plan limits, ShipEngine {opts.carrier_rpm} "
                    "requests/min. Ctrl-C stops.",
                    highlight=False,
                )
                view = HubView(project)
                user, password = view.console_user()
                console.print(
                    f"Console: {hub_url}/console/  user [bold]{user}[/bold], password "
                    f"[bold]{password}[/bold] (new each run)",
                    highlight=False,
                )
                gen = Generator(sandbox, opts, stop)
                started = time.monotonic()
                gen.start()
                try:
                    result = _watch(opts, console, sandbox, view, gen, stop, started)
                    stop.set()
                    gen.join(5)
                    result.update(_drain(opts, console, sandbox, view, gen, started))
                finally:
                    view.close()
                _final(console, result, project, hub_url, sandbox)
                return result
    finally:
        signal.signal(signal.SIGINT, previous)


def _watch(
    opts: DemoOptions,
    console: Console,
    sandbox: Sandbox,
    view: HubView,
    gen: Generator,
    stop: threading.Event,
    started: float,
) -> dict[str, Any]:
    def frame() -> Group:
        counts = read_counts(sandbox)
        hub = view.counts()
        cases = Table(show_header=False, show_edge=False, box=None)
        for category, reason, n in view.cases():
            cases.add_row(f"[red]{n:4d}[/red]", f"[bold]{category}[/bold]", reason[:110])
        return Group(_table(counts, gen, hub, time.monotonic() - started), cases)

    if opts.live:
        with Live(frame(), console=console, refresh_per_second=2, transient=False) as live:
            while not stop.is_set() and gen.is_alive():
                if opts.duration and time.monotonic() - started >= opts.duration:
                    break
                stop.wait(0.5)
                live.update(frame())
    else:
        last = 0.0
        while not stop.is_set() and gen.is_alive():
            if opts.duration and time.monotonic() - started >= opts.duration:
                break
            stop.wait(0.5)
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                c = read_counts(sandbox)
                console.print(
                    f"{time.monotonic() - started:5.0f}s placed {gen.placed} wms {c.wms_orders} "
                    f"shipped {c.shipments} labels {c.labels} fulfilled {c.fulfilled} "
                    f"invoiced {c.invoices} complete {c.complete}",
                    highlight=False,
                )
    return {}


def _drain(
    opts: DemoOptions,
    console: Console,
    sandbox: Sandbox,
    view: HubView,
    gen: Generator,
    started: float,
) -> dict[str, Any]:
    """Stop placing orders; wait for the chain to finish what it has."""
    placed_end = gen.finished_at or time.monotonic()
    console.print(f"Stopped placing orders ({gen.placed}); letting the chain finish ...")
    expected = gen.placed - sum(gen.failures.values())
    deadline = time.monotonic() + opts.drain
    counts = read_counts(sandbox)
    best, done_at = counts.complete, time.monotonic()
    while time.monotonic() < deadline:
        counts = read_counts(sandbox)
        if counts.complete > best:
            best, done_at = counts.complete, time.monotonic()
        hub = view.counts()
        if counts.complete >= expected and hub.get("in_progress", 1) == 0:
            break
        if time.monotonic() - done_at > 20:
            break  # nothing completed for a while: what is left waits for a person
        time.sleep(1.0)
    elapsed = max(1e-6, done_at - started)
    hub = view.counts()
    return {
        "placed": gen.placed,
        "designed_failures": dict(gen.failures),
        "complete": counts.complete,
        "wms_orders": counts.wms_orders,
        "labels": counts.labels,
        "fulfilled": counts.fulfilled,
        "invoices": counts.invoices,
        "exceptions": hub.get("exceptions", 0),
        "in_progress": hub.get("in_progress", 0),
        "placing_seconds": round(placed_end - started, 2),
        "chain_seconds": round(elapsed, 2),
        "orders_per_second": round(counts.complete / elapsed, 2),
    }


def _final(
    console: Console, r: dict[str, Any], project: Path, hub_url: str, sandbox: Sandbox
) -> None:
    console.print(
        f"\n[bold]{r['complete']}[/bold] of {r['placed']} orders went through the whole chain "
        f"(warehouse, label, fulfillment with tracking, invoice) in {r['chain_seconds']} s: "
        f"[bold]{r['orders_per_second']} orders/s[/bold]. Designed to fail: "
        f"{r['designed_failures'] or 'none'}; open exceptions: {r['exceptions']}.",
        highlight=False,
    )
    console.print(
        "Where to look (the project keeps its database; the sandboxes' credentials are its "
        "defaults):\n"
        f"  cd {project}\n"
        "  crossdock exceptions list       what needs a person, and the fix\n"
        "  crossdock status                received = succeeded + skipped + ...\n"
        "  crossdock keys create -w acme   a key for the REST API, then\n"
        "  crossdock serve                 the hub again, with the console at\n"
        f"  {hub_url}/console/  (user demo, password above) and the API at /api/v1/docs\n"
        f"  hub log: {project}/.crossdock/demo-hub.log",
        highlight=False,
    )
