"""Issue 8, what a new user meets first: grpcurl on a protected slave, clean stops,
plug-ins from the project folder, suggestions for a mistyped method, the job id
trailer. Real daemons and the real grpcurl binary throughout."""

from __future__ import annotations

import json

import pytest

from arko.testing import Daemon, Fleet


def _stray_lines(daemon: Daemon) -> list[str]:
    """What the daemon printed that is not a JSON log event (tracebacks, warnings)."""
    stray = []
    for line in daemon.log_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if line.strip() and not isinstance(event, dict):
            stray.append(line)
    return stray


@pytest.mark.parametrize("after_a_job", [False, True], ids=["idle", "after_a_job"])
def test_a_stopped_daemon_prints_no_traceback(fleet: Fleet, client_for, after_a_job: bool) -> None:
    """SIGTERM stops slave and master with status 0 and nothing but log events on stderr."""
    master = fleet.master()
    slave = fleet.slave(master, "--run_delay", "0")
    if after_a_job:
        assert "done" in client_for(master).run("MyPipeline.DryRun")
    for daemon in (slave, master):
        assert daemon.stop() == 0
        assert daemon.events(f"{daemon.kind}_stopped"), daemon.log_text()
        assert _stray_lines(daemon) == []
