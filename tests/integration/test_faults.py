"""Faults injected into real processes: kill -9, SIGTERM, SIGSTOP, cancelled callers."""

from __future__ import annotations

import signal
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Daemon, Fleet, wait_until

FAST_PING = ("--ping_interval", "0.3", "--ping_timeout", "1")
TOOLBOX = ("--service", "toolbox_plugin:plugin")


def _query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, args))


def _job(db: Path, job_id: str) -> tuple[object, ...] | None:
    rows = _query(db, "SELECT state, slave, error_code, error FROM job WHERE id = ?", job_id)
    return rows[0] if rows else None


def _stub(master: Daemon) -> tuple[grpc.Channel, execution_pb2_grpc.ExecutionStub]:
    channel = grpc.insecure_channel(master.address)
    return channel, execution_pb2_grpc.ExecutionStub(channel)


def _job_id_of(err: grpc.RpcError) -> str | None:
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "arko-job-id":
            return str(value)
    return None


def _dispatched(
    pool: ThreadPoolExecutor,
    stub: execution_pb2_grpc.ExecutionStub,
    master: Daemon,
    param: str,
    timeout: float,
) -> Future[execution_pb2.JobStatus]:
    """Start MyPipeline.Run in ``pool`` and return once the master has sent it to a slave.

    The master must log at debug level (job_dispatched).
    """
    call = pool.submit(
        stub.ExecuteJob,
        execution_pb2.JobParams(method="MyPipeline.Run", params={"param": param}),
        timeout=timeout,
    )
    master.wait_for_event("job_dispatched")
    return call


def test_kill_9_master_under_load_loses_nothing(fleet: Fleet) -> None:
    """A master killed mid-stream comes back with its slave, and every job settled."""
    db = fleet.workdir / "arko.db"
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0.2", "--register_backoff_max", "0.5")
    channel, stub = _stub(master)
    succeeded: list[str] = []
    broken: list[str | None] = []
    stop = threading.Event()

    def worker(i: int) -> None:
        for n in range(200):  # bounded: the kill ends it much sooner
            if stop.is_set():
                return
            try:
                reply = stub.ExecuteJob(
                    execution_pb2.JobParams(
                        method="MyPipeline.Run", params={"param": f"{i}-{n}", "password": "pw"}
                    ),
                    timeout=20,
                )
            except grpc.RpcError as err:
                broken.append(_job_id_of(err))
                return
            succeeded.append(reply.job_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for i in range(8):
            pool.submit(worker, i)
        wait_until(lambda: len(succeeded) >= 16, timeout=30, what="16 jobs to succeed")
        master.kill()
        stop.set()
    channel.close()
    assert broken, "the kill should have cut some jobs off"

    again = fleet.master(port=master.port)
    again.wait_for_event("jobs_recovered")
    assert _query(db, "SELECT count(*) FROM slave") == [(1,)]
    assert _query(db, "SELECT count(*) FROM job WHERE state IN ('queued', 'running')") == [(0,)]
    for job_id in succeeded:
        assert _job(db, job_id) is not None and _job(db, job_id)[0] == "succeeded", job_id
    for maybe in broken:
        if maybe is not None and _job(db, maybe) is not None:
            assert _job(db, maybe)[0] in ("interrupted", "failed", "succeeded")
    interrupted = _query(db, "SELECT error FROM job WHERE state = 'interrupted'")
    assert all("master stopped" in str(row[0]) for row in interrupted)


def test_kill_9_slave_mid_job_fails_fast_and_moves_on(fleet: Fleet) -> None:
    """A slave killed during a job: UNAVAILABLE at once, status 0, next job elsewhere."""
    db = fleet.workdir / "arko.db"
    master = fleet.master("--log_level", "debug")
    first = fleet.slave(master, "--run_delay", "60")
    second = fleet.slave(master, "--run_delay", "0")
    channel, stub = _stub(master)
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = _dispatched(pool, stub, master, "long", timeout=45)
        first.kill()
        with pytest.raises(grpc.RpcError) as err:
            call.result(timeout=40)
    # Not DEADLINE_EXCEEDED: the master noticed the slave's death, not the clock.
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert first.address in err.value.details()
    rows = dict(_query(db, "SELECT port, status FROM slave"))
    assert rows[first.port] == 0
    reply = stub.ExecuteJob(
        execution_pb2.JobParams(method="MyPipeline.Run", params={"param": "next"}), timeout=20
    )
    assert second.events("pipeline_run")[-1]["param"] == "next"
    record = wait_until(
        lambda: (r := _job(db, reply.job_id)) and r[0] != "running" and r,
        timeout=10,
        what="the job's final record",
    )
    assert record[:2] == ("succeeded", second.address)
    channel.close()


def test_slaves_register_again_after_master_returns(fleet: Fleet) -> None:
    """A master that comes back on an empty database gets every slave back by itself."""
    master = fleet.master()
    slaves = [fleet.slave(master, "--register_backoff_max", "1") for _ in range(3)]
    master.stop()
    for slave in slaves:
        slave.wait_for_event("master_lost")
    fresh_db = fleet.workdir / "fresh.db"
    fleet.master(port=master.port, db=fresh_db)
    wait_until(
        lambda: _query(fresh_db, "SELECT count(*) FROM slave WHERE status = 1") == [(3,)],
        timeout=20,
        what="all three slaves to register again",
    )


def test_sigterm_on_master_lets_running_job_finish(fleet: Fleet) -> None:
    """SIGTERM during a job: the job still succeeds, then the master exits 0."""
    master = fleet.master("--log_level", "debug", "--grace", "20")
    fleet.slave(master, "--run_delay", "1.5")
    channel, stub = _stub(master)
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = _dispatched(pool, stub, master, "finish-me", timeout=30)
        master.signal(signal.SIGTERM)
        reply = call.result(timeout=30)
    assert "finish-me" in reply.message
    assert master.proc is not None and master.proc.wait(20) == 0
    # Flushed on the way out.
    assert _job(fleet.workdir / "arko.db", reply.job_id)[0] == "succeeded"
    channel.close()


def test_sigterm_on_slave_finishes_its_running_call(fleet: Fleet) -> None:
    """SIGTERM on a slave mid-call: the call completes, the slave exits 0."""
    master = fleet.master("--log_level", "debug")
    slave = fleet.slave(master, "--run_delay", "1.5")
    channel, stub = _stub(master)
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = _dispatched(pool, stub, master, "drain", timeout=30)
        slave.signal(signal.SIGTERM)
        reply = call.result(timeout=30)
    assert "drain" in reply.message
    assert slave.proc is not None and slave.proc.wait(20) == 0
    channel.close()


def test_hung_slave_does_not_hang_the_master(fleet: Fleet, client_for) -> None:
    """A frozen (SIGSTOP) slave is marked down by the ping; jobs and registrations go on."""
    master = fleet.master(*FAST_PING)
    frozen = fleet.slave(master, "--run_delay", "0")
    fleet.slave(master, "--run_delay", "0")
    frozen.signal(signal.SIGSTOP)
    try:
        master.wait_for_event("slave_down", timeout=15)
        client = client_for(master)
        assert "done" in client.run("MyPipeline.Run", param="elsewhere", timeout=10)
        fleet.slave(master, "--run_delay", "0")  # registration still answered
        pings = len(master.events("slaves_changed"))
        assert pings >= 3
    finally:
        frozen.signal(signal.SIGCONT)


def test_cancelled_caller_cancels_the_slave_call(fleet: Fleet, toolbox_env: dict[str, str]) -> None:
    """A caller that cancels its ExecuteJob cancels the call on the slave, and it is recorded."""
    master = fleet.master()
    slave = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    channel, stub = _stub(master)
    future = stub.ExecuteJob.future(
        execution_pb2.JobParams(method="arko.testing.v1.Toolbox.Sleep", params={"seconds": "30"}),
        timeout=60,
    )
    slave.wait_for_event("sleep_started")
    # (Asking the sync future for its initial metadata first would make
    # cancel() a no-op in grpcio, so the job id comes from the master's log.)
    assert future.cancel()
    slave.wait_for_event("sleep_cancelled")
    job_id = master.wait_for_event("job_finished")["job_id"]
    db = fleet.workdir / "arko.db"
    record = wait_until(
        lambda: (r := _job(db, job_id)) and r[0] != "running" and r,
        timeout=10,
        what="the job's final record",
    )
    assert (record[0], record[2]) == ("cancelled", "CANCELLED")
    channel.close()


def test_job_timeout_applies_when_caller_sets_no_deadline(
    fleet: Fleet, toolbox_env: dict[str, str], client_for
) -> None:
    """--job_timeout bounds a job whose caller gave no deadline."""
    master = fleet.master("--job_timeout", "0.5")
    fleet.slave(master, *TOOLBOX, env=toolbox_env)
    channel, stub = _stub(master)
    with pytest.raises(grpc.RpcError) as err:
        stub.ExecuteJob(
            execution_pb2.JobParams(
                method="arko.testing.v1.Toolbox.Sleep", params={"seconds": "10"}
            )
        )
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    channel.close()


def test_draining_slave_is_not_given_new_jobs(fleet: Fleet, client_for) -> None:
    """A slave draining after SIGTERM reports NOT_SERVING; the master sends jobs elsewhere."""
    master = fleet.master(*FAST_PING, "--log_level", "debug")
    draining = fleet.slave(master, "--run_delay", "4", "--grace", "20")
    other = fleet.slave(master, "--run_delay", "0")
    channel, stub = _stub(master)
    with ThreadPoolExecutor(max_workers=1) as pool:
        call = _dispatched(pool, stub, master, "long", timeout=30)
        draining.signal(signal.SIGTERM)
        down = master.wait_for_event("slave_down", timeout=10)
        assert down["slave"] == draining.address
        client_for(master).run("MyPipeline.Run", param="new", timeout=10)
        assert other.events("pipeline_run")[-1]["param"] == "new"
        assert "long" in call.result(timeout=30).message
    channel.close()
