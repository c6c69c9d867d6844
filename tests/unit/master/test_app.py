"""The master's wiring: which coordinator it is given, what a failing loop does, what it imports.

A master is started in this process on a SQLite file and an ephemeral port
on loopback, with no slave: only the wiring is under test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from arko.common.daemon import _serve
from arko.common.settings import load_settings
from arko.master.app import Master
from arko.master.cluster.coordination import ALONE
from arko.master.settings import MasterSettings
from arko.master.slaves.probe import Pinger


def _settings(tmp_path: Path) -> MasterSettings:
    return load_settings(
        MasterSettings,
        [
            "--db",
            str(tmp_path / "arko.db"),
            "--port",
            "0",
            "--listen_host",
            "127.0.0.1",
            "--journal_dir",
            str(tmp_path / "journal"),
            "--grace",
            "1",
        ],
    )


def test_master_on_sqlite_is_alone(tmp_path: Path) -> None:
    """On SQLite no other master can share the database: the single-master
    coordinator is wired in, and stopping leaves nothing running."""

    async def scenario() -> None:
        async with Master(_settings(tmp_path)) as master:
            assert master._coordinator is ALONE
            assert master._loops is not None and not master._loops.done()
        assert master._loops.done()
        assert master.exit_code == 0

    asyncio.run(scenario())


def test_a_failing_loop_stops_the_master_with_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop that raises is logged as master_loop_failed, naming it and the
    error; the master then stops (its other loops cancelled, its port closed)
    and exits 1 instead of serving on half alive."""

    async def broken(_self: Pinger) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("the ping loop broke")

    monkeypatch.setattr(Pinger, "run", broken)

    async def scenario() -> int:
        master = Master(_settings(tmp_path))
        return await asyncio.wait_for(_serve(master), 20)

    with capture_logs() as logs:
        code = asyncio.run(scenario())
    assert code == 1
    failed = [e for e in logs if e["event"] == "master_loop_failed"]
    assert len(failed) == 1
    assert failed[0]["loop"] == "ping-loop"
    assert "the ping loop broke" in failed[0]["error"]
    events = [e["event"] for e in logs]
    assert events.index("master_loop_failed") < events.index("master_stopping")
    assert "master_stopped" in events


def test_stop_cancels_the_loops_without_a_failure(tmp_path: Path) -> None:
    """Loops cancelled by a stop are not failures: no master_loop_failed, status 0."""

    async def scenario() -> int:
        master = Master(_settings(tmp_path))
        await master.start()
        await asyncio.sleep(0.05)
        await master.stop()
        await master.wait()
        return master.exit_code

    with capture_logs() as logs:
        assert asyncio.run(scenario()) == 0
    assert not [e for e in logs if e["event"] == "master_loop_failed"]


def test_a_master_without_http_does_not_import_aiohttp() -> None:
    """aiohttp is half of the master's import time: only --http_port pays for it."""
    probe = "import sys, arko.master.app; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
