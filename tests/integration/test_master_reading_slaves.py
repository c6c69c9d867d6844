"""A master on PostgreSQL that has not read a slave yet never calls its methods unknown.

A master knows the shared slave table before it has read the slaves
themselves: after a restart, until each protected slave registers again, and
for every slave another master pings. ``arko run`` describes the method
first; that description waits for the slave or reads it, as a job would,
rather than answer NOT_FOUND ("arko: not found", exit 4).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from arko.testing import Daemon, Fleet, postgres_server, wait_until
from arko.v1 import admin_pb2, admin_pb2_grpc
from tests.postgres import OFF

ARKO = str(Path(sys.executable).parent / "arko")
PATIENT = ("--connect_timeout", "20")
TOKEN = "reading-slaves-join-token"


@pytest.fixture
def pg_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A fleet whose masters share a fresh PostgreSQL database, whatever this pass's default."""
    if postgres_server() == OFF:
        pytest.skip("ARKO_TEST_POSTGRES=off: PostgreSQL tests skipped on purpose")
    with Fleet(tmp_path, master_db="postgresql").running() as fleet:
        yield fleet


def _arko_run(master: Daemon, *fields: str) -> subprocess.CompletedProcess[str]:
    """``arko run MyPipeline.Run FIELDS`` against ``master``, as a user types it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKO_")}
    env["ARKO_MASTER"] = master.address
    return subprocess.run(
        [ARKO, "--timeout", "60", "run", "MyPipeline.Run", *fields],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def _stamp(event: dict[str, object]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(event["timestamp"]))


def test_arko_run_right_after_a_restart_waits_for_the_slave(pg_fleet: Fleet) -> None:
    """Run at once after a restart, before the protected slave registered again: it waits.

    The slave is backing off six seconds or more when the master comes back,
    so the run reaches the master before the slave does (checked below).
    """
    master = pg_fleet.master(*PATIENT)
    slave = pg_fleet.slave(master, "--run_delay", "0", "--register_backoff_max", "10")
    master.stop()
    wait_until(
        lambda: any(e["retry_in"] >= 6 for e in slave.events("register_retry")),
        timeout=60,
        what="the slave to back off for 6 s or more",
    )
    again = pg_fleet.master(*PATIENT, port=master.port)
    asked = dt.datetime.now(dt.UTC)
    out = _arko_run(again, "param=after-restart")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "after-restart" in out.stdout
    registered_again = _stamp(slave.events("registered")[-1])
    assert registered_again > asked, "the slave registered before the run: nothing was waited for"


def test_arko_run_on_a_master_that_does_not_ping_the_slave(pg_fleet: Fleet) -> None:
    """The slave registered with and pinged by another master: this one reads it when asked.

    Two masters, one slave: the first master by name holds its ping lease,
    so the second knows the slave only from the shared table.
    """
    env = {"ARKO_MASTER_JOIN_TOKEN": TOKEN}
    pinger = pg_fleet.master("--name", "m1", env=env)
    pg_fleet.slave(pinger, "--run_delay", "0", env={"ARKO_SLAVE_JOIN_TOKEN": TOKEN})
    other = pg_fleet.master("--name", "m2", env=env)
    with grpc.insecure_channel(other.address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)

        def listed_live() -> bool:
            slaves = stub.ListSlaves(admin_pb2.ListSlavesRequest(), timeout=10).slaves
            return [s.status for s in slaves] == ["LIVE"]

        wait_until(listed_live, 30, "the second master to list the slave as live")
    out = _arko_run(other, "param=from-m2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "from-m2" in out.stdout
