"""Faults injected into real processes: kill -9, SIGTERM, SIGSTOP, cancelled callers."""

from __future__ import annotations

import signal
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.master.jobs.state import INTERRUPTED_REASON
from arko.testing import Daemon, Fleet, wait_until

FAST_PING = ("--ping_interval", "0.3", "--ping_timeout", "1")
TOOLBOX = ("--service", "toolbox_plugin:plugin")
# On a shared (PostgreSQL) database a job's row exists as queued before it is sent.
UNFINISHED = ("queued", "running")


def _job(fleet: Fleet, job_id: str) -> tuple[object, ...] | None:
    rows = fleet.query("SELECT state, slave, error_code, error FROM job WHERE id = ?", job_id)
    return rows[0] if rows else None


def _stub(master: Daemon) -> tuple[grpc.Channel, execution_pb2_grpc.ExecutionStub]:
    channel = grpc.insecure_channel(master.address)
    return channel, execution_pb2_grpc.ExecutionStub(channel)


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
    """A master killed mid-stream comes back with its slave; every job it sent is settled.

    After a kill -9 the callers get no trailing metadata, so the jobs cut off
    are found in the killed master's own log instead: sent to the slave
    (``job_dispatched``) with no ``job_finished`` after it.
    Each must be in the database afterwards, and ``interrupted``.
    """
    master = fleet.master("--log_level", "debug")
    fleet.slave(master, "--run_delay", "0.2", "--register_backoff_max", "0.5")
    channel, stub = _stub(master)
    succeeded: list[str] = []
    broken: list[grpc.RpcError] = []
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
                broken.append(err)
                return
            succeeded.append(reply.job_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for i in range(8):
            pool.submit(worker, i)
        wait_until(lambda: len(succeeded) >= 16, timeout=30, what="16 jobs to succeed")
        master.kill()
        stop.set()
    channel.close()
    assert broken, "the kill should have cut some calls off"
    dispatched = {e["job_id"] for e in master.events("job_dispatched")}
    ended = {e["job_id"] for e in master.events("job_finished")}
    in_flight = dispatched - ended
    assert in_flight, "the kill should have caught jobs on the slave"
    assert set(succeeded) <= ended

    again = fleet.master(port=master.port)
    again.wait_for_event("jobs_recovered")
    assert fleet.query("SELECT count(*) FROM slave") == [(1,)]
    assert fleet.query("SELECT count(*) FROM job WHERE state IN ('queued', 'running')") == [(0,)]
    states = dict(fleet.query("SELECT id, state FROM job"))
    assert dispatched - states.keys() == set(), "jobs the master sent are missing"
    assert {states[job_id] for job_id in succeeded} == {"succeeded"}
    interrupted = {job_id for job_id in in_flight if states[job_id] == "interrupted"}
    assert interrupted, {job_id: states[job_id] for job_id in in_flight}
    # A success journaled in the instant between its journal line and its log
    # line reads succeeded: the record is right, only the log missed it.
    assert {states[job_id] for job_id in in_flight - interrupted} <= {"succeeded"}
    reasons = fleet.query("SELECT DISTINCT error FROM job WHERE state = 'interrupted'")
    assert reasons == [(INTERRUPTED_REASON,)]


def test_kill_9_slave_mid_job_fails_fast_and_moves_on(fleet: Fleet) -> None:
    """A slave killed during a job: UNAVAILABLE at once, status 0, next job elsewhere."""
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
    rows = dict(fleet.query("SELECT port, status FROM slave"))
    assert rows[first.port] == 0
    reply = stub.ExecuteJob(
        execution_pb2.JobParams(method="MyPipeline.Run", params={"param": "next"}), timeout=20
    )
    assert second.events("pipeline_run")[-1]["param"] == "next"
    record = wait_until(
        lambda: (r := _job(fleet, reply.job_id)) and r[0] not in UNFINISHED and r,
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
    fresh_db = fleet.database("fresh")
    fleet.master(port=master.port, db=fresh_db)
    wait_until(
        lambda: fleet.query("SELECT count(*) FROM slave WHERE status = 1", db=fresh_db) == [(3,)],
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
    assert _job(fleet, reply.job_id)[0] == "succeeded"
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


def test_hung_slave_holds_only_its_own_job(fleet: Fleet, client_for) -> None:
    """A slave frozen (SIGSTOP) mid-job holds that job and nothing else.

    Ping sweeps keep ending while it is frozen (counted from the master's
    ``ping_sweep_done`` events, not from slave-list changes, which the test's
    own registrations also log) and mark it down; other jobs and
    registrations are answered; and its own job, which no failed ping may
    cancel, finishes once it thaws.
    """
    master = fleet.master(*FAST_PING, "--log_level", "debug")
    frozen = fleet.slave(master, "--run_delay", "5")
    other = fleet.slave(master, "--run_delay", "0")
    channel, stub = _stub(master)
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = _dispatched(pool, stub, master, "held", timeout=60)
        frozen.signal(signal.SIGSTOP)
        try:
            down = master.wait_for_event("slave_down", timeout=15)
            assert down["slave"] == frozen.address
            assert "elsewhere" in client_for(master).run("MyPipeline.Run", param="elsewhere")
            assert other.events("pipeline_run")[-1]["param"] == "elsewhere"
            fleet.slave(master, "--run_delay", "0")  # registration still answered
            sweeps = len(master.events("ping_sweep_done"))
            last = master.wait_for_event("ping_sweep_done", count=sweeps + 3, timeout=30)
            assert (last["slaves"], last["live"]) == (3, 2)
            assert not held.done(), "the frozen slave cannot have answered"
            assert not frozen.events("pipeline_run")
        finally:
            frozen.signal(signal.SIGCONT)
        assert "held" in held.result(timeout=30).message
    assert frozen.events("pipeline_run")[-1]["param"] == "held"
    channel.close()


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
    record = wait_until(
        lambda: (r := _job(fleet, job_id)) and r[0] not in UNFINISHED and r,
        timeout=10,
        what="the job's final record",
    )
    assert (record[0], record[2]) == ("cancelled", "CANCELLED")
    channel.close()


def test_disconnected_caller_cancels_the_slave_call(
    fleet: Fleet, toolbox_env: dict[str, str], grpcurl: str
) -> None:
    """A caller that goes away (killed, no cancel sent) cancels the call on the slave too.

    The caller is grpcurl in its own process; SIGKILL leaves it no chance to
    cancel, so the master learns only from the closed connection.
    """
    master = fleet.master()
    slave = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    request = '{"method": "arko.testing.v1.Toolbox.Sleep", "params": {"seconds": "60"}}'
    caller = subprocess.Popen(
        [grpcurl, "-plaintext", "-d", request, master.address, "Execution/ExecuteJob"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        slave.wait_for_event("sleep_started")
    finally:
        caller.kill()
        caller.wait(10)
    slave.wait_for_event("sleep_cancelled")
    job_id = master.wait_for_event("job_finished")["job_id"]
    record = wait_until(
        lambda: (r := _job(fleet, job_id)) and r[0] not in UNFINISHED and r,
        timeout=10,
        what="the job's final record",
    )
    assert (record[0], record[2]) == ("cancelled", "CANCELLED")
    assert not slave.events("sleep_finished")


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
    """A slave draining after SIGTERM is marked down and skipped; its running job finishes.

    A draining grpc.aio server takes no new connection, so what the next ping
    meets is a refused connection; the master's handling of a slave that is
    reachable but NOT_SERVING is tested apart, with a slave that stays so.
    """
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
    assert [e["param"] for e in draining.events("pipeline_run")] == ["long"]
    channel.close()


def test_draining_slave_reports_not_serving(fleet: Fleet) -> None:
    """SIGTERM turns the slave's health NOT_SERVING, seen by a Health.Watch stream it had open."""
    master = fleet.master()
    slave = fleet.slave(master, "--grace", "20")
    with slave.channel() as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=30
        )
        try:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            slave.signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            watch.cancel()
    assert slave.proc is not None and slave.proc.wait(30) == 0
