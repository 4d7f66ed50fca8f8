"""``crossdock bench``: the phases, their checks and the report.

For every run (default 3) and every database (SQLite, PostgreSQL or both) it measures:

1. **baseline**: wrk against a plain ASGI app (:mod:`crossdock.bench.plain`) served like
   the hub; requests/s. Measured once per run and shared by both databases.
2. **ingest**: wrk against ``crossdock serve --no-worker`` (unsigned connection, a unique
   event per request); acknowledged (2xx) webhooks/s, non-2xx and socket errors, the ratio
   to the baseline, and ``crossdock status --json`` events == 2xx answers.
3. **end-to-end**: preload ``events`` webhooks with the worker off, stop serve, start the
   hub with its worker(s) (SQLite: inside serve; PostgreSQL: serve --no-worker and three
   ``crossdock worker`` processes) and time the drain into the reference sink;
   deliveries/s, and the sink holds exactly ``events`` effects.
4. **latency**: the open-loop generator (:mod:`crossdock.bench.loadgen`) offers ``rate``
   HMAC-signed webhooks/s for ``seconds`` to the hub with its worker(s) and the sink
   running; ack latency p50/p90/p99/max and end-to-end latency (sink ``received_at`` -
   ``sent_at``) p50/p99.
5. **memory**: VmHWM (peak resident set) of serve, the workers and the baseline app.

Every phase runs against a fresh database. Medians over the runs are reported, next to
the targets. Exit code: 0, 1 when a phase failed or a check did not hold, 2 when wrk is
missing or the arguments are wrong.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from crossdock.bench import project as bench_project
from crossdock.bench.wrk import WrkMissing, run_wrk, wrk_path
from crossdock.testing.pgserver import PostgresServer, free_port, wait_port
from crossdock.testing.processes import Hub, Proc, Sink, status

# Targets (see docs/benchmark.md).
TARGET_INGEST = 4000.0  # acknowledged webhooks/s on SQLite
TARGET_E2E = 1500.0  # deliveries/s
TARGET_P99_MS = 25.0  # ack p99 at 1,000/s offered

WRK_THREADS = 1
WRK_CONNECTIONS = 64
WARMUP_SECONDS = 2.0
PG_WORKERS = 3


class CheckFailed(RuntimeError):
    """A phase ran, but what it verified did not hold."""


# -- processes --------------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set size, KiB) of a live process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class HubProcesses(Hub):
    """The hub's processes for a phase, with the bench's checks and memory readings."""

    def __init__(
        self,
        project: Path,
        database_url: str,
        workdir: Path,
        tag: str,
        *,
        in_serve_worker: bool,
        workers: int = 0,
    ) -> None:
        super().__init__(
            project,
            database_url,
            workdir,
            workers=workers,
            in_serve_worker=in_serve_worker,
            tag=tag,
        )

    def check_alive(self) -> None:
        """:class:`CheckFailed` if a hub process exited during the phase."""
        for p in [self.serve, *self.workers]:
            if p is not None and (code := p.popen.poll()) is not None:
                raise CheckFailed(
                    f"{p.log.name.removesuffix('.log')} exited during the phase (code {code}; "
                    f"negative = killed by that signal, from outside the bench):\n{p.tail(15)}"
                )

    def memory(self) -> dict[str, Any]:
        """Peak RSS (MiB) of serve and of each worker, read while they are alive."""

        def mib(p: Proc | None) -> float | None:
            kib = peak_rss_kib(p.popen.pid) if p is not None else None
            return round(kib / 1024, 1) if kib is not None else None

        workers = [m for m in (mib(w) for w in self.workers) if m is not None]
        return {
            "serve_mib": mib(self.serve),
            "workers_mib": workers,
            "worker_max_mib": max(workers) if workers else None,
        }


@contextmanager
def running(hub: HubProcesses) -> Iterator[HubProcesses]:
    """Start the hub processes, stop them on the way out (even on errors)."""
    try:
        yield hub.start()
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{hub.logs()}") from exc
    finally:
        hub.stop()


def loadgen(*args: str, timeout: float) -> dict[str, Any]:
    """Run ``python -m crossdock.bench.loadgen ARGS`` in its own process; its JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "crossdock.bench.loadgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


# -- databases --------------------------------------------------------------------------


class Databases:
    """Fresh databases: SQLite files, or PostgreSQL databases on one server."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.server: PostgresServer | None = None
        self.env_url = os.environ.get("CROSSDOCK_DATABASE_URL") if kind == "postgresql" else None
        self.created: list[str] = []

    def describe(self) -> str:
        """Where the databases live."""
        if self.kind == "sqlite":
            return "SQLite files (WAL, synchronous=FULL unless CROSSDOCK_SQLITE_SYNCHRONOUS)"
        if self.env_url:
            return "PostgreSQL from CROSSDOCK_DATABASE_URL (a fresh database per phase)"
        return "throw-away PostgreSQL server (fsync=off; a fresh database per phase)"

    def fresh(self, name: str) -> str:
        """A new, empty database for one phase of one run; its URL."""
        if self.kind == "sqlite":
            path = self.workdir / f"{name}.db"
            return f"sqlite:///{path}"
        if self.env_url:
            return self._create_on(self.env_url)
        if self.server is None:
            self.server = PostgresServer().start()
        return self.server.create_database()

    def _create_on(self, url: str) -> str:
        import psycopg
        from sqlalchemy.engine import make_url

        base = make_url(url).set(drivername="postgresql")
        dbname = "crossdock_bench_" + uuid.uuid4().hex[:10]
        admin = base.render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        self.created.append(dbname)
        return base.set(database=dbname).render_as_string(hide_password=False)

    def close(self) -> None:
        """Drop what was created on the user's server; stop the throw-away server."""
        if self.env_url and self.created:
            import psycopg
            from sqlalchemy.engine import make_url

            admin = make_url(self.env_url).set(drivername="postgresql")
            try:
                with psycopg.connect(
                    admin.render_as_string(hide_password=False), autocommit=True
                ) as conn:
                    for name in self.created:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception:  # leave them; they are named crossdock_bench_*
                pass
        if self.server is not None:
            self.server.stop()


# -- phases -----------------------------------------------------------------------------


@dataclass
class Settings:
    """What one ``crossdock bench`` invocation measures."""

    seconds: float
    runs: int
    events: int
    rate: float
    connections: int = WRK_CONNECTIONS
    threads: int = WRK_THREADS


@dataclass
class Context:
    """Shared state of one invocation."""

    settings: Settings
    workdir: Path
    console: Console
    log: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        """One progress line."""
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}", highlight=False)


def phase_baseline(ctx: Context, tag: str) -> dict[str, Any]:
    """wrk against the plain ASGI app."""
    s = ctx.settings
    port = free_port()
    proc = Proc(
        [sys.executable, "-m", "crossdock.bench.plain", "--port", str(port)],
        ctx.workdir / f"{tag}-plain.log",
    )
    try:
        wait_port(port, timeout=30)
        url = f"http://127.0.0.1:{port}"
        path = bench_project.hook_path()
        run_wrk(
            url,
            path,
            seconds=WARMUP_SECONDS,
            workdir=ctx.workdir,
            prefix=f"{tag}w",
            threads=s.threads,
            connections=s.connections,
        )
        res = run_wrk(
            url,
            path,
            seconds=s.seconds,
            workdir=ctx.workdir,
            prefix=tag,
            threads=s.threads,
            connections=s.connections,
        )
        kib = peak_rss_kib(proc.popen.pid)
    finally:
        proc.stop()
    return {
        "rps": res.ok_per_second,
        "wrk": res.to_dict(),
        "plain_mib": round(kib / 1024, 1) if kib else None,
    }


def phase_ingest(ctx: Context, dbs: Databases, tag: str) -> dict[str, Any]:
    """wrk against ``serve --no-worker``; then events stored == 2xx answers."""
    s = ctx.settings
    root = bench_project.write_project(ctx.workdir / f"{tag}-project", "http://127.0.0.1:9")
    hub = HubProcesses(root, dbs.fresh(tag), ctx.workdir, tag, in_serve_worker=False)
    with running(hub):
        path = bench_project.hook_path()
        warm = run_wrk(
            hub.url,
            path,
            seconds=WARMUP_SECONDS,
            workdir=ctx.workdir,
            prefix=f"{tag}w",
            threads=s.threads,
            connections=s.connections,
        )
        res = run_wrk(
            hub.url,
            path,
            seconds=s.seconds,
            workdir=ctx.workdir,
            prefix=tag,
            threads=s.threads,
            connections=s.connections,
        )
        hub.check_alive()
        mem = hub.memory()
        time.sleep(0.5)  # let answers that wrk stopped waiting for commit
        st = hub.status()
    acked = warm.ok + res.ok
    # wrk stops at the deadline without reading answers still in flight: those events are
    # stored (acknowledged to nobody), at most one per connection per wrk run.
    unread = st["events"] - acked
    ok = res.ok > 0 and 0 <= unread <= 2 * s.connections and st["received"] == st["events"]
    errors = sum(res.socket_errors.values())
    return {
        "acked_per_s": res.ok_per_second,
        "acked": res.ok,
        "non_2xx": res.non_2xx,
        "last_non_2xx": res.last_non_2xx,
        "socket_errors": res.socket_errors,
        "errors": res.non_2xx + errors,
        "latency_ms": res.latency_ms,
        "stored_events": st["events"],
        "acked_incl_warmup": acked,
        "stored_minus_acked": unread,
        "stored_matches_acked": ok,
        **mem,
    }


def _wait(cond: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.time()
        time.sleep(poll)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def _sink_effects(sink: Sink) -> int:
    return int(sink.stats()["effects"])


def _sink_quiet(sink: Sink, target: int, timeout: float, quiet: float = 3.0) -> None:
    """Wait (cheaply, without spawning ``crossdock status``) until the sink holds
    ``target`` effects or has received nothing new for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = _sink_effects(sink)
        if n >= target:
            return
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


def _hub_for_delivery(root: Path, url: str, ctx: Context, tag: str, postgres: bool) -> HubProcesses:
    if postgres:
        return HubProcesses(root, url, ctx.workdir, tag, in_serve_worker=False, workers=PG_WORKERS)
    sqlite_workers = int(os.environ.get("CROSSDOCK_BENCH_SQLITE_WORKERS", "0"))
    if sqlite_workers:
        return HubProcesses(
            root, url, ctx.workdir, tag, in_serve_worker=False, workers=sqlite_workers
        )
    return HubProcesses(root, url, ctx.workdir, tag, in_serve_worker=True)


def phase_end_to_end(ctx: Context, dbs: Databases, tag: str) -> dict[str, Any]:
    """Preload with the worker off, then time the drain into the sink."""
    s = ctx.settings
    n = s.events
    sink = Sink(ctx.workdir)
    try:
        root = bench_project.write_project(ctx.workdir / f"{tag}-project", sink.url)
        url = dbs.fresh(tag)
        pre = HubProcesses(root, url, ctx.workdir, f"{tag}-preload", in_serve_worker=False)
        with running(pre):
            loaded = loadgen(
                "preload",
                "--url",
                pre.url,
                "--path",
                bench_project.hook_path(),
                "--count",
                str(n),
                "--concurrency",
                str(s.connections),
                timeout=600,
            )
            pre.check_alive()
            pre_mem = pre.memory()
        st = status(root, pre.env)
        if st["events"] != n or st["received"] != n:
            raise CheckFailed(f"after the preload expected {n} events and deliveries: {st}")
        hub = _hub_for_delivery(root, url, ctx, f"{tag}-drain", dbs.kind == "postgresql")
        with running(hub):
            _sink_quiet(sink, n, 900)
            settled: dict[str, Any] = {}

            def all_settled() -> bool:
                settled.update(hub.status())
                return bool(settled["in_progress"] == 0)

            done_at = _wait(all_settled, 300, "every delivery to settle", poll=0.5)
            hub.check_alive()
            mem = hub.memory()
        effects = sink.effects(bench_project.COLLECTION)
    finally:
        sink.stop()
    keys = {e["idempotency_key"] for e in effects}
    first = min(e["received_at"] for e in effects)
    last = max(e["received_at"] for e in effects)
    exact = len(effects) == n and len(keys) == n and settled["succeeded"] == n
    return {
        "events": n,
        "preload_per_s": loaded["rate"],
        "preload_retries": loaded["retries"],
        "deliveries_per_s": (n - 1) / (last - first) if last > first else 0.0,
        "drain_seconds": last - first,
        "wall_seconds": done_at - hub.ready_at,
        "wall_per_s": n / (done_at - hub.ready_at),
        "first_effect_after_ready_s": first - hub.ready_at,
        "sink_effects": len(effects),
        "distinct_keys": len(keys),
        "succeeded": settled["succeeded"],
        "exceptions": settled["exceptions"],
        "exactly_n": exact,
        "preload_serve_mib": pre_mem["serve_mib"],
        **mem,
    }


def phase_latency(ctx: Context, dbs: Databases, tag: str) -> dict[str, Any]:
    """Open-loop load at a fixed rate; ack latency and end-to-end latency."""
    from crossdock.bench.loadgen import percentiles

    s = ctx.settings
    sink = Sink(ctx.workdir)
    try:
        root = bench_project.write_project(ctx.workdir / f"{tag}-project", sink.url)
        hub = _hub_for_delivery(root, dbs.fresh(tag), ctx, tag, dbs.kind == "postgresql")
        with running(hub):
            time.sleep(1.0)  # the workers' start-up is not part of the measurement
            res = loadgen(
                "open",
                "--url",
                hub.url,
                "--path",
                bench_project.hook_path(bench_project.SIGNED),
                "--secret",
                bench_project.SECRET,
                "--rate",
                str(s.rate),
                "--seconds",
                str(s.seconds),
                timeout=s.seconds + 300,
            )
            acked = int(res["acked"])
            settled: dict[str, Any] = {}

            def all_settled() -> bool:
                settled.update(hub.status())
                return bool(settled["received"] >= acked and settled["in_progress"] == 0)

            _sink_quiet(sink, acked, 300)
            # Done = every delivery succeeded, was skipped by a named rule (a late older
            # version is skipped as stale once a newer one was delivered) or is an exception.
            _wait(all_settled, 300, f"{acked} deliveries to settle", poll=0.5)
            hub.check_alive()
            mem = hub.memory()
        effects = sink.effects(bench_project.COLLECTION)
    finally:
        sink.stop()
    if settled["succeeded"] != len(effects) or settled["received"] != acked:
        raise CheckFailed(
            f"{acked} webhooks acknowledged, {settled['received']} deliveries, "
            f"{settled['succeeded']} succeeded, but the sink holds {len(effects)} effects"
        )
    if acked == 0 or res["sent"] != acked:
        raise CheckFailed(
            f"{res['sent']} webhooks sent but {acked} acknowledged "
            f"(statuses {res['statuses']}, errors {res['errors']})"
        )
    e2e = [(e["received_at"] - float(e["body"]["sent_at"])) * 1000 for e in effects]
    return {
        "offered_rate": s.rate,
        "achieved_rate": res["achieved_rate"],
        "sent": res["sent"],
        "acked": acked,
        "errors": res["non_2xx"] + sum(res["errors"].values()),
        "ack_ms": res["ack_latency_ms"],
        "send_lag_ms": res["send_lag_ms"],
        "e2e_ms": percentiles(e2e),
        "sink_effects": len(effects),
        "succeeded": settled["succeeded"],
        "skipped_stale": settled["skipped"],
        "exceptions": settled["exceptions"],
        "connections_peak": res["connections_peak"],
        **mem,
    }


# -- report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One row of the report: where the value is in a run's results, and its target."""

    label: str
    phase: str
    path: tuple[str, ...]
    fmt: str = "{:,.0f}"
    target: str = ""
    check: Callable[[float], bool] | None = None
    sqlite_only: bool = False


FIGURES: list[Figure] = [
    Figure("Baseline: plain ASGI, req/s", "baseline", ("rps",)),
    Figure(
        "Ingest: acknowledged webhooks/s",
        "ingest",
        ("acked_per_s",),
        target=f">= {TARGET_INGEST:,.0f} (SQLite)",
        check=lambda v: v >= TARGET_INGEST,
        sqlite_only=True,
    ),
    Figure("Ingest / baseline", "ingest", ("ratio",), "{:.1%}"),
    Figure(
        "Ingest: non-2xx + socket errors", "ingest", ("errors",), target="0", check=lambda v: v == 0
    ),
    Figure("Ingest: wrk p99 (closed loop), ms", "ingest", ("latency_ms", "p99"), "{:.1f}"),
    Figure("Preload (Python, 64 conns), webhooks/s", "e2e", ("preload_per_s",)),
    Figure(
        "End-to-end: deliveries/s (sink)",
        "e2e",
        ("deliveries_per_s",),
        target=f">= {TARGET_E2E:,.0f}",
        check=lambda v: v >= TARGET_E2E,
    ),
    Figure("End-to-end: deliveries/s (wall, polled)", "e2e", ("wall_per_s",)),
    Figure("Latency: achieved rate, webhooks/s", "latency", ("achieved_rate",), target=f"{1000:,}"),
    Figure("Latency: ack p50, ms", "latency", ("ack_ms", "p50"), "{:.1f}"),
    Figure("Latency: ack p90, ms", "latency", ("ack_ms", "p90"), "{:.1f}"),
    Figure(
        "Latency: ack p99, ms",
        "latency",
        ("ack_ms", "p99"),
        "{:.1f}",
        target=f"<= {TARGET_P99_MS:.0f}",
        check=lambda v: v <= TARGET_P99_MS,
    ),
    Figure("Latency: ack max, ms", "latency", ("ack_ms", "max"), "{:.1f}"),
    Figure("Latency: end-to-end p50, ms", "latency", ("e2e_ms", "p50"), "{:.1f}"),
    Figure("Latency: end-to-end p99, ms", "latency", ("e2e_ms", "p99"), "{:.1f}"),
    Figure("Memory: plain app peak, MiB", "baseline", ("plain_mib",)),
    Figure("Memory: serve peak (ingest), MiB", "ingest", ("serve_mib",)),
    Figure("Memory: serve peak (preload), MiB", "e2e", ("preload_serve_mib",)),
    Figure("Memory: serve peak (drain), MiB", "e2e", ("serve_mib",)),
    Figure("Memory: worker peak (drain), MiB", "e2e", ("worker_max_mib",)),
    Figure("Memory: serve peak (latency), MiB", "latency", ("serve_mib",)),
    Figure("Memory: worker peak (latency), MiB", "latency", ("worker_max_mib",)),
]


def _dig(data: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return float(data) if isinstance(data, int | float) and not isinstance(data, bool) else None


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every reported figure over the runs that measured it."""
    out: dict[str, Any] = {}
    for f in FIGURES:
        values = [v for r in runs if (v := _dig(r.get(f.phase), f.path)) is not None]
        out[f.label] = statistics.median(values) if values else None
        out[f.label + " (runs)"] = values
    return out


def render(
    console: Console, kinds: list[str], summary: dict[str, dict[str, Any]], settings: Settings
) -> None:
    """The rich table: one row per figure, one column per database, and the target."""
    table = Table(
        title=f"crossdock bench: medians of {settings.runs} run(s), {os.cpu_count()} CPU(s)",
        caption=(
            f"wrk -t{settings.threads} -c{settings.connections} -d{settings.seconds:g}s; "
            f"{settings.events:,} events end-to-end; {settings.rate:,.0f}/s offered for "
            f"{settings.seconds:g} s (open loop)"
        ),
    )
    table.add_column("figure")
    for kind in kinds:
        table.add_column(kind, justify="right")
    table.add_column("target", justify="right")
    for f in FIGURES:
        cells = []
        for kind in kinds:
            value = summary[kind].get(f.label)
            if value is None:
                cells.append("-")
                continue
            text = f.fmt.format(value)
            if f.check is not None and (kind == "sqlite" or not f.sqlite_only):
                text += " [green]ok[/green]" if f.check(value) else " [red]MISS[/red]"
            cells.append(text)
        table.add_row(f.label, *cells, f.target)
    console.print(table)


# -- main -------------------------------------------------------------------------------


def main(
    database: str = "sqlite",
    seconds: float = 10.0,
    runs: int = 3,
    out: Path | None = None,
    console: Console | None = None,
    *,
    events: int = 20_000,
    rate: float = 1000.0,
) -> int:
    """Run the benchmark; print the table; write JSON to ``out``. Returns the exit code."""
    console = console or Console()
    # The CLI may log at INFO; one line per status poll would drown the progress lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kinds = {
        "sqlite": ["sqlite"],
        "postgresql": ["postgresql"],
        "both": ["sqlite", "postgresql"],
    }.get(database)
    if kinds is None:
        console.print(
            f"[red]error:[/red] --database must be sqlite, postgresql or both, not '{database}'"
        )
        return 2
    if runs < 1 or seconds < 1:
        console.print("[red]error:[/red] --runs and --seconds must be at least 1")
        return 2
    try:
        wrk_path()
    except WrkMissing as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    settings = Settings(seconds=seconds, runs=runs, events=events, rate=rate)
    workdir = Path(tempfile.mkdtemp(prefix="crossdock-bench-"))
    ctx = Context(settings, workdir, console)
    dbs = {kind: Databases(kind, workdir) for kind in kinds}
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    failures: list[str] = []
    ctx.say(f"Working folder {workdir}")
    try:
        for run in range(1, runs + 1):
            baseline: dict[str, Any] | None = None
            try:
                ctx.say(f"run {run}/{runs}: baseline (plain ASGI app, wrk)")
                baseline = phase_baseline(ctx, f"r{run}-baseline")
                ctx.say(f"  baseline {baseline['rps']:,.0f} req/s")
            except Exception as exc:
                failures.append(f"run {run} baseline: {exc}")
                ctx.say(f"  [red]baseline failed[/red]: {exc}")
            for kind in kinds:
                result: dict[str, Any] = {"run": run, "baseline": baseline}
                results[kind].append(result)
                _run_phases(ctx, dbs[kind], kind, run, result, failures)
    finally:
        for d in dbs.values():
            d.close()

    summary = {kind: medians(results[kind]) for kind in kinds}
    render(console, kinds, summary, settings)
    if failures:
        console.print("[red]Problems:[/red]")
        for f in failures:
            console.print(f"  - {f.splitlines()[0]}", highlight=False)
        console.print(f"Logs kept in {workdir}")
    if out is not None:
        doc = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
            },
            "settings": settings.__dict__,
            "databases": {k: dbs[k].describe() for k in kinds},
            "targets": {
                "ingest_per_s_sqlite": TARGET_INGEST,
                "e2e_per_s": TARGET_E2E,
                "ack_p99_ms": TARGET_P99_MS,
            },
            "medians": summary,
            "runs": results,
            "failures": failures,
        }
        out.write_text(json.dumps(doc, indent=2, default=str))
        console.print(f"Wrote {out}")
    if not failures:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


def _run_phases(
    ctx: Context, dbs: Databases, kind: str, run: int, result: dict[str, Any], failures: list[str]
) -> None:
    runs = ctx.settings.runs
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("ingest", lambda: phase_ingest(ctx, dbs, f"r{run}-{kind}-ingest")),
        ("e2e", lambda: phase_end_to_end(ctx, dbs, f"r{run}-{kind}-e2e")),
        ("latency", lambda: phase_latency(ctx, dbs, f"r{run}-{kind}-latency")),
    ]
    for name, step in steps:
        ctx.say(f"run {run}/{runs} {kind}: {name}")
        try:
            data = step()
        except Exception as exc:
            failures.append(f"run {run} {kind} {name}: {exc}")
            ctx.say(f"  [red]{name} failed[/red]: {str(exc)[:2000]}")
            continue
        result[name] = data
        if name == "ingest":
            base = result.get("baseline")
            data["ratio"] = data["acked_per_s"] / base["rps"] if base and base["rps"] else None
            ctx.say(
                f"  {data['acked_per_s']:,.0f} acknowledged/s, {data['errors']} errors, "
                f"stored {data['stored_events']:,} for {data['acked_incl_warmup']:,} acked"
            )
            if data["errors"]:
                failures.append(f"run {run} {kind} ingest: {data['errors']} errors")
            if not data["stored_matches_acked"]:
                failures.append(
                    f"run {run} {kind} ingest: stored {data['stored_events']} "
                    f"events for {data['acked_incl_warmup']} 2xx answers"
                )
        elif name == "e2e":
            ctx.say(
                f"  {data['deliveries_per_s']:,.0f} deliveries/s "
                f"(wall {data['wall_per_s']:,.0f}/s), sink holds {data['sink_effects']:,}"
            )
            if not data["exactly_n"]:
                failures.append(
                    f"run {run} {kind} e2e: sink holds {data['sink_effects']} "
                    f"effects ({data['distinct_keys']} keys), expected "
                    f"{data['events']}; succeeded {data['succeeded']}"
                )
        else:
            ack, e2e = data["ack_ms"], data["e2e_ms"]
            ctx.say(
                f"  {data['achieved_rate']:,.0f}/s achieved; ack p50 {ack['p50']:.1f} "
                f"p99 {ack['p99']:.1f} max {ack['max']:.1f} ms; end-to-end p50 "
                f"{e2e['p50']:.1f} p99 {e2e['p99']:.1f} ms"
            )
            if data["exceptions"]:
                failures.append(f"run {run} {kind} latency: {data['exceptions']} exceptions")
