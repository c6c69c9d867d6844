"""A second master on a database and journal in use refuses at once, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from arko.testing import Daemon, Fleet, is_postgres_url, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc

STREAM = "MyPipelineLogs.Stream"
# Long enough to outlast a second master's start and refusal on a loaded
# machine; the test checks the job was still running when it was refused.
SLOW = {"lines": 200, "interval": 0.05}


@pytest.fixture
def jobs_stub() -> Iterator[list[grpc.Channel]]:
    """Channels opened by a test, closed after it."""
    channels: list[grpc.Channel] = []
    yield channels
    for channel in channels:
        channel.close()


def _start_slow_job(fleet: Fleet, master: Daemon, channels: list[grpc.Channel]) -> str:
    """Start a long streaming job on ``master``; return its id once its record says running."""
    channel = grpc.insecure_channel(master.address)
    channels.append(channel)
    request = jobs_pb2.RunRequest(method=STREAM, detach=True)
    request.args.update(SLOW)
    (accepted,) = list(jobs_pb2_grpc.JobsStub(channel).Run(request, timeout=30))
    job_id = accepted.job_id

    def stored_running() -> bool:
        return fleet.query("SELECT state FROM job WHERE id = ?", job_id) == [("running",)]

    wait_until(stored_running, 30, "the job's record to say running")
    return job_id


def _refused(second: Daemon, first: Daemon) -> str:
    """Wait for ``second`` to exit; check it refused naming ``first``; return its reason."""
    assert second.proc is not None
    assert second.proc.wait(60) == 2, second.log_text()
    (failed,) = second.events("startup_failed")
    assert f"pid {first.pid}, port {first.port}" in failed["reason"], failed
    assert "Traceback" not in second.log_text()
    assert not second.events("jobs_recovered")
    return str(failed["reason"])


def _finishes_untouched(fleet: Fleet, first: Daemon, job_id: str, channels: list) -> None:
    """The job was still running at the refusal, untouched; it then ends as it would have."""
    state = fleet.query("SELECT state, error FROM job WHERE id = ?", job_id)
    assert state == [("running", "")], "the job ended before the check (or was interrupted)"
    channel = grpc.insecure_channel(first.address)
    channels.append(channel)
    request = jobs_pb2.WatchRequest(job_id=job_id)
    events = list(jobs_pb2_grpc.JobsStub(channel).Watch(request, timeout=90))
    assert events[-1].job.state == jobs_pb2.SUCCEEDED
    assert not first.events("jobs_recovered")


@pytest.mark.sqlite_only("masters on one PostgreSQL database on other ports are a fleet")
def test_a_second_master_on_the_same_sqlite_file_refuses_naming_the_first(
    fleet: Fleet, jobs_stub: list[grpc.Channel]
) -> None:
    """Another port, the same --db: refused at once, naming the first master's PID and port."""
    first = fleet.master()
    fleet.slave(first)
    job_id = _start_slow_job(fleet, first, jobs_stub)
    second = fleet.master(wait=False)
    reason = _refused(second, first)
    assert f"database {fleet.database()} is in use by another master" in reason
    assert "give it another --db" in reason
    _finishes_untouched(fleet, first, job_id, jobs_stub)


def test_a_second_master_on_the_same_port_changes_no_job(
    fleet: Fleet, jobs_stub: list[grpc.Channel]
) -> None:
    """The same port and database (arko-master run twice): refused before any recovery."""
    first = fleet.master()
    fleet.slave(first)
    job_id = _start_slow_job(fleet, first, jobs_stub)
    second = fleet.master(port=first.port, wait=False)
    _refused(second, first)
    _finishes_untouched(fleet, first, job_id, jobs_stub)


def test_a_master_killed_leaves_no_lock_behind(fleet: Fleet) -> None:
    """After SIGKILL its lock files remain, but the kernel freed the lock: a restart starts."""
    first = fleet.master()
    first.kill()
    journal = fleet.journal(first)
    db = fleet.database()
    locks = [journal / "master.lock"] + ([] if is_postgres_url(db) else [Path(f"{db}.lock")])
    assert all(lock.exists() for lock in locks)
    again = fleet.master(port=first.port)
    assert again.events("master_started")
    assert again.stop() == 0
