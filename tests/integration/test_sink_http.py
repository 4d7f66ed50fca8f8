"""The reference sink over a real loopback socket (uvicorn) and as a command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from crossdock.emulators.sink import running_sink

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_concurrent_requests_with_one_key_have_one_effect_over_http() -> None:
    with running_sink() as sink:
        assert sink.port > 0
        async with httpx.AsyncClient(base_url=sink.url) as c:
            statuses: list[int] = []

            async def send(i: int) -> None:
                r = await c.post(
                    "/records/orders",
                    json={"order": 1001},
                    headers={"Idempotency-Key": "same", "X-Correlation-Id": f"c{i}"},
                )
                statuses.append(r.status_code)

            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(send, i)
            effects = (await c.get("/_sink/effects")).json()
        assert sorted(statuses) == [200] * 49 + [201]
        assert len(effects) == 1
        assert len(sink.state.effects_for("orders")) == 1


@pytest.mark.anyio
async def test_client_timeout_after_effect_is_verifiable_by_key() -> None:
    """The uncertain outcome end to end: the client times out, the lookup finds the effect,
    and a retry with the same key is a replay, not a second effect."""
    with running_sink() as sink:
        sink.state.add_fault({"kind": "timeout", "delay": 2, "after_effect": True, "count": 1})
        async with httpx.AsyncClient(base_url=sink.url) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.post(
                    "/records/orders", json={"v": 1}, headers={"Idempotency-Key": "u"}, timeout=0.3
                )
            found = await c.get("/records/orders/by-key/u")
            retry = await c.post("/records/orders", json={"v": 1}, headers={"Idempotency-Key": "u"})
        assert found.status_code == 200
        assert found.json()["id"] == "orders-1"
        assert retry.status_code == 200
        assert retry.headers["idempotent-replayed"] == "true"
        assert len(sink.state.effects) == 1


@pytest.mark.anyio
async def test_token_and_rate_limit_apply_over_http() -> None:
    with running_sink(token="t0k", rate_limit=1, burst=1) as sink:
        async with httpx.AsyncClient(base_url=sink.url) as c:
            assert (await c.post("/records/orders", json={})).status_code == 401
            auth = {"Authorization": "Bearer t0k"}
            assert (await c.post("/records/orders", json={}, headers=auth)).status_code == 201
            limited = await c.post("/records/orders", json={}, headers=auth)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert len(sink.state.effects) == 1


def test_sink_runs_as_a_command() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossdock.emulators.sink", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("crossdock sink listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        deadline = time.monotonic() + 10
        while True:
            try:
                health = httpx.get(url + "/_sink/health", timeout=1)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert health.json() == {"ok": True}
        r = httpx.post(url + "/records/orders", json={"a": 1}, headers={"Idempotency-Key": "k"})
        assert r.status_code == 201
    finally:
        proc.terminate()
        # uvicorn shuts down cleanly, then re-raises the signal it caught
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
