"""Run Crossdock and its sandboxes as real processes: for promise tests and the benchmark.

Each process gets its own port on loopback; ``kill()`` is a real ``SIGKILL``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import httpx

from crossdock.testing.pgserver import free_port


class Proc:
    """A child process with a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self._log_f = open(log, "ab")  # noqa: SIM115 - kept open for the child's life
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(
            args, stdout=self._log_f, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )

    def kill(self) -> None:
        """kill -9."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 15) -> None:
        """Ctrl-C, then kill if it does not stop."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_f.close()

    def tail(self, n: int = 40) -> str:
        """The last lines of the process's output (for failure messages)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def wait_http(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """Wait until ``url`` answers (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.tail()}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(
        f"{url} did not answer in {timeout} s" + (f"\n{proc.tail()}" if proc else "")
    )


def wait_log(proc: Proc, text: str, timeout: float = 30.0) -> None:
    """Wait until ``proc`` has printed ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.tail()}")
        if text in proc.log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"'{text}' not printed in {timeout} s\n{proc.tail()}")


def crossdock(*args: str) -> list[str]:
    """The command line to run ``crossdock ARGS`` with this interpreter."""
    return [sys.executable, "-m", "crossdock", *args]


class Sink:
    """The reference sink in its own process."""

    def __init__(self, workdir: Path, **options: Any) -> None:
        self.port = free_port()
        args = ["sandbox", "sink", "--port", str(self.port)]
        for k, v in options.items():
            if v is not None:
                args += [f"--{k.replace('_', '-')}", str(v)]
        self.proc = Proc(crossdock(*args), workdir / f"sink-{self.port}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/_sink/stats", proc=self.proc)

    def effects(self, collection: str | None = None) -> list[dict[str, Any]]:
        """What the sink recorded, in arrival order."""
        params = {"collection": collection} if collection else None
        data = httpx.get(self.url + "/_sink/effects", params=params, timeout=30).json()
        return list(data["effects"] if isinstance(data, dict) else data)

    def stats(self) -> dict[str, Any]:
        """The sink's counters."""
        return dict(httpx.get(self.url + "/_sink/stats", timeout=10).json())

    def fault(self, rule: dict[str, Any]) -> None:
        """Add a fault rule."""
        httpx.post(self.url + "/_sink/faults", json=rule, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        httpx.delete(self.url + "/_sink/faults", timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop the sink."""
        self.proc.stop()


class Hub:
    """``crossdock serve`` (and optionally separate ``crossdock worker`` processes)."""

    def __init__(
        self,
        project: Path,
        database_url: str,
        workdir: Path,
        *,
        workers: int = 0,
        in_serve_worker: bool | None = None,
        tag: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.workdir = workdir
        self.env = {"CROSSDOCK_DATABASE_URL": database_url, **(env or {})}
        self.n_workers = workers
        # By default serve runs the worker itself only when there are no worker processes.
        self.in_serve_worker = workers == 0 if in_serve_worker is None else in_serve_worker
        self.tag = f"{tag}-" if tag else ""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.serve: Proc | None = None
        self.workers: list[Proc] = []
        self.starts = 0
        self.ready_at = 0.0

    def start(self) -> Self:
        """Start serve, wait for ``/healthz``, then start the workers and wait for them."""
        self.starts += 1
        args = ["serve", "--project", str(self.project), "--port", str(self.port)]
        if not self.in_serve_worker:
            args.append("--no-worker")
        log = self.workdir / f"{self.tag}serve-{self.starts}.log"
        self.serve = Proc(crossdock(*args), log, self.env)
        wait_http(self.url + "/healthz", timeout=90, proc=self.serve)
        self.ready_at = time.time()
        self.workers = [
            Proc(
                crossdock("worker", "--project", str(self.project)),
                self.workdir / f"{self.tag}worker-{self.starts}-{i}.log",
                self.env,
            )
            for i in range(self.n_workers)
        ]
        for w in self.workers:
            wait_log(w, "running", timeout=60)
        return self

    def kill(self) -> None:
        """kill -9 every hub process."""
        for p in [self.serve, *self.workers]:
            if p is not None:
                p.kill()

    def stop(self) -> None:
        """Stop every hub process cleanly."""
        for p in [*self.workers, self.serve]:
            if p is not None:
                p.stop()

    def status(self) -> dict[str, Any]:
        """``crossdock status --json``."""
        return status(self.project, self.env)

    def wait_settled(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until nothing is pending or in progress; return the status."""
        deadline = time.monotonic() + timeout
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:
            st = self.status()
            if st["received"] and st["in_progress"] == 0:
                return st
            time.sleep(0.5)
        raise TimeoutError(f"deliveries still in progress: {st}\n{self.logs()}")

    def logs(self) -> str:
        """Tails of every process log."""
        return "\n".join(
            f"--- {p.log.name}\n{p.tail()}" for p in [self.serve, *self.workers] if p is not None
        )


def status(project: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``crossdock status --json`` for ``project`` with ``env``."""
    out = subprocess.run(
        crossdock("status", "--json", "--project", str(project)),
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    if out.returncode not in (0, 2):
        raise RuntimeError(f"crossdock status failed: {out.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(out.stdout)
    return data
