"""The README's main command, `crossdock demo`, runs the chain and says what it did."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from crossdock.testing.pgserver import free_port
from crossdock.testing.processes import crossdock

pytestmark = pytest.mark.slow


def test_crossdock_demo_moves_every_order_through_the_chain_and_reports_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "result.json"
    run = subprocess.run(
        crossdock(
            "demo", "--dir", str(tmp_path / "demo"), "--port", str(free_port()),
            "--no-fixed-ports", "--no-live", "--rate", "8", "--orders", "12",
            "--failures", "0", "--drain", "90", "--out", str(out),
        ),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["placed"] == 12 and result["complete"] == 12, result
    assert result["exceptions"] == 0 and result["orders_per_second"] > 0
    assert "went through the whole chain" in run.stdout
    assert "crossdock exceptions list" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
