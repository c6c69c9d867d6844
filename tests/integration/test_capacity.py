"""Capacity, the job queue, labels, policies and the arko.v1.job option, on real daemons."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from arko.gen import register_pb2, register_pb2_grpc
from arko.testing import Daemon, Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOOLBOX = ("--service", "toolbox_plugin:plugin")
SLEEP = "arko.testing.v1.Toolbox.Sleep"
DEPLOY = "arko.testing.v1.Toolbox.Deploy"
ZONED = "arko.testing.v1.Toolbox.Zoned"
ECHO = "arko.testing.v1.Toolbox.Echo"


class Jobs:
    """A blocking arko.v1.Jobs client for one master."""

    def __init__(self, master: Daemon) -> None:
        self.channel = grpc.insecure_channel(master.address)
        self.stub = jobs_pb2_grpc.JobsStub(self.channel)

    def start(
        self, method: str, labels: dict[str, str] | None = None, **params: str
    ) -> Iterator[jobs_pb2.JobEvent]:
        request = jobs_pb2.RunRequest(method=method, params=params, labels=labels or {})
        return self.stub.Run(request, timeout=60)  # type: ignore[no-any-return]

    def run(self, method: str, labels: dict[str, str] | None = None, **params: str) -> jobs_pb2.Job:
        """Run to the end and return the final record (raises grpc.RpcError)."""
        events = list(self.start(method, labels, **params))
        return events[-1].job

    def get(self, job_id: str) -> jobs_pb2.Job:
        return self.stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=10)


@pytest.fixture
def jobs() -> Iterator[list[Jobs]]:
    made: list[Jobs] = []
    yield made
    for client in made:
        client.channel.close()


def _client(made: list[Jobs], master: Daemon) -> Jobs:
    made.append(Jobs(master))
    return made[-1]


def _toolbox(
    fleet: Fleet, master: Daemon, env: dict[str, str], *args: str, port: int | None = None
) -> Daemon:
    return fleet.slave(master, *TOOLBOX, *args, env=env, port=port)


def _stamp(event: dict[str, object]) -> float:
    return dt.datetime.fromisoformat(str(event["timestamp"])).timestamp()


def _intervals(slaves: list[Daemon]) -> list[tuple[float, float]]:
    """(start, end) of every sleep the slaves ran, from their logs, in start order."""
    spans = []
    for slave in slaves:
        starts = [_stamp(e) for e in slave.events("sleep_started")]
        ends = [_stamp(e) for e in slave.events("sleep_finished")]
        assert len(starts) == len(ends), slave.log_text()[-2000:]
        spans += list(zip(starts, ends, strict=True))
    return sorted(spans)


def test_third_job_queues_then_runs_on_the_slave_that_frees_first(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """Two slaves of capacity 1, three jobs: the third is QUEUED, then runs once, where room is."""
    master = fleet.master()
    a = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    b = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=3) as pool:
        long = pool.submit(client.run, SLEEP, seconds="2")
        wait_until(lambda: a.events("sleep_started"), 15, "the first job on slave a")
        short = pool.submit(client.run, SLEEP, seconds="0.5")
        wait_until(lambda: b.events("sleep_started"), 15, "the second job on slave b")
        third_events = client.start(SLEEP, seconds="0.1")
        accepted = next(third_events)
        third_id = accepted.job_id
        queued = master.wait_for_event("job_queued")
        assert queued["job_id"] == third_id
        assert client.get(third_id).state == jobs_pb2.QUEUED
        third: Future[list[jobs_pb2.JobEvent]] = pool.submit(list, third_events)
        done = third.result(timeout=30)[-1].job
        assert long.result(timeout=30).slave == a.address
        assert short.result(timeout=30).slave == b.address
    assert done.state == jobs_pb2.SUCCEEDED
    assert done.slave == b.address  # b freed first
    assert len(a.events("sleep_started")) == 1  # none ran twice
    assert len(b.events("sleep_started")) == 2
    assert not a.events("call_refused") and not b.events("call_refused")


def test_a_registering_slave_takes_queued_work_at_once(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """A queued job starts on a slave that registers, not at the next ping or job end."""
    master = fleet.master("--ping_interval", "3600")
    a = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=2) as pool:
        busy = pool.submit(client.run, SLEEP, seconds="30")
        wait_until(lambda: a.events("sleep_started"), 15, "the job on slave a")
        waiting = pool.submit(client.run, SLEEP, seconds="0")
        master.wait_for_event("job_queued")
        b = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
        assert waiting.result(timeout=20).slave == b.address
        assert not busy.done()
        a.stop()
        with pytest.raises(grpc.RpcError):
            busy.result(timeout=30)


def test_queue_timeout_is_resource_exhausted_and_recorded(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """No room within --queue_timeout: RESOURCE_EXHAUSTED, and the record says so."""
    master = fleet.master("--queue_timeout", "0.5")
    slave = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(client.run, SLEEP, seconds="3")
        wait_until(lambda: slave.events("sleep_started"), 15, "the first job")
        events = client.start(SLEEP, seconds="0")
        job_id = next(events).job_id
        with pytest.raises(grpc.RpcError) as err:
            list(events)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert SLEEP in err.value.details() and "0.5s" in err.value.details()
        record = client.get(job_id)
        assert record.state == jobs_pb2.FAILED and record.code == "RESOURCE_EXHAUSTED"
        assert "queue" in record.error and not record.slave
        assert busy.result(timeout=30).state == jobs_pb2.SUCCEEDED
    assert len(slave.events("sleep_started")) == 1


def test_max_concurrency_one_never_overlaps(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """Deploy (max_concurrency: 1) on two slaves, six callers at once: never two at once."""
    master = fleet.master()
    slaves = [_toolbox(fleet, master, toolbox_env) for _ in range(2)]
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=6) as pool:
        done = [r.state for r in pool.map(lambda _: client.run(DEPLOY, seconds="0.2"), range(6))]
    assert done == [jobs_pb2.SUCCEEDED] * 6
    spans = _intervals(slaves)
    assert len(spans) == 6
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, spans
    assert master.events("job_queued")


def test_least_loaded_spreads_jobs_over_the_slaves(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """--policy least_loaded: eight concurrent jobs land two on each of four slaves."""
    master = fleet.master("--policy", "least_loaded")
    slaves = [_toolbox(fleet, master, toolbox_env) for _ in range(4)]
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=8) as pool:
        ran = list(pool.map(lambda _: client.run(SLEEP, seconds="2").slave, range(8)))
    assert sorted(ran) == sorted(s.address for s in slaves for _ in range(2))


def test_labels_pick_the_slave_and_an_unmatched_selector_fails_fast(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """A label selector picks the slave; one nobody matches is FAILED_PRECONDITION naming it."""
    master = fleet.master()
    _toolbox(fleet, master, toolbox_env, "--label", "zone=a")
    b = fleet.slave(master, *TOOLBOX, env={**toolbox_env, "ARKO_SLAVE_LABEL": "zone=b,tier=gpu"})
    client = _client(jobs, master)
    assert client.run(ECHO, {"zone": "b"}, name="x").slave == b.address
    assert client.run(ECHO, {"tier": "gpu", "zone": "b"}, name="x").slave == b.address
    with pytest.raises(grpc.RpcError) as err:
        client.run(ECHO, {"zone": "c"}, name="x")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "zone=c" in err.value.details() and ECHO in err.value.details()
    # The method's own required_labels (zone=b) pass over the first slave.
    assert client.run(ZONED, seconds="0").slave == b.address
    with pytest.raises(grpc.RpcError) as err:
        client.run(ZONED, {"zone": "a"}, seconds="0")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # ... and its timeout_seconds (1) bounds the run on the slave.
    with pytest.raises(grpc.RpcError) as err:
        client.run(ZONED, seconds="30")
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_killed_slave_does_not_strand_the_queue(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """Kill the only slave while a job waits for it: the waiter fails at once, new slaves serve."""
    master = fleet.master("--ping_interval", "3600")
    a = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = pool.submit(client.run, SLEEP, seconds="30")
        wait_until(lambda: a.events("sleep_started"), 15, "the job on slave a")
        queued = pool.submit(client.run, SLEEP, seconds="0")
        master.wait_for_event("job_queued")
        a.kill()
        for future in (running, queued):
            with pytest.raises(grpc.RpcError) as err:
                future.result(timeout=30)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
    b = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    assert client.run(SLEEP, seconds="0").slave == b.address


def test_a_third_party_slave_without_the_common_service_runs_jobs(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """A plain gRPC server with reflection (no arko.v1.Slave): no limit, no labels, jobs run."""
    master = fleet.master()
    port = free_port()
    plain = subprocess.Popen(
        [sys.executable, str(FIXTURES / "plain_slave.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**toolbox_env, "PATH": ""},
    )
    try:
        assert plain.stdout is not None and plain.stdout.readline().strip() == "plain_slave_ready"
        with grpc.insecure_channel(master.address) as channel:
            reply = register_pb2_grpc.RegisterStub(channel).RegisterNewSlave(
                register_pb2.SlaveConfig(host="127.0.0.1", port=port), timeout=10
            )
        assert reply.message == "done"
        client = _client(jobs, master)
        assert json.loads(client.run(ECHO, name="plain").result)["summary"].startswith("name=plain")
        with ThreadPoolExecutor(max_workers=3) as pool:
            ran = list(pool.map(lambda _: client.run(SLEEP, seconds="0.3").state, range(3)))
        assert ran == [jobs_pb2.SUCCEEDED] * 3
        assert not master.events("job_queued")  # no capacity means no limit
    finally:
        plain.kill()
        plain.wait(10)


def test_status_service_reports_capacity_and_labels(
    fleet: Fleet, toolbox_env: dict[str, str], grpcurl: str
) -> None:
    """grpcurl reads arko.v1.Slave/Status; the master hides it from the job methods."""
    open_slave = fleet.slave(
        None, *TOOLBOX, "--capacity", "3", "--label", "zone=a", env=toolbox_env
    )
    out = subprocess.run(
        [grpcurl, "-plaintext", open_slave.address, "arko.v1.Slave/Status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["capacity"] == 3 and status["labels"] == {"zone": "a"} and status["version"]
    master = fleet.master()
    protected = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    methods = master.events("slaves_changed")[-1]["slaves"][0]["methods"]
    assert methods and not [m for m in methods if m.startswith("arko.v1.")]
    protos = FIXTURES.parent.parent / "protos"
    stranger = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-import-path",
            str(protos),
            "-proto",
            "arko/v1/slave.proto",
            protected.address,
            "arko.v1.Slave/Status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stranger.returncode != 0 and "Unauthenticated" in stranger.stderr, stranger.stderr


def _register(master: Daemon, slave: Daemon) -> None:
    with grpc.insecure_channel(master.address) as channel:
        reply = register_pb2_grpc.RegisterStub(channel).RegisterNewSlave(
            register_pb2.SlaveConfig(host="127.0.0.1", port=slave.port), timeout=10
        )
    assert reply.message == "done"


def test_a_call_refused_as_full_is_sent_elsewhere(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """Two masters share slaves: the one that does not know a slave is full is refused
    before the handler runs, and sends the job to the other slave; nothing fails."""
    first = fleet.master()
    second = fleet.master(db=fleet.database("second"))
    a, b = (fleet.slave(None, *TOOLBOX, "--capacity", "1", env=toolbox_env) for _ in range(2))
    for master in (first, second):
        for slave in (a, b):
            _register(master, slave)
    with ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(_client(jobs, second).run, SLEEP, seconds="2")
        wait_until(lambda: a.events("sleep_started"), 15, "the second master's job on a")
        moved = _client(jobs, first).run(SLEEP, seconds="0")
        assert busy.result(timeout=30).slave == a.address
    assert moved.state == jobs_pb2.SUCCEEDED and moved.slave == b.address
    assert len(a.events("call_refused")) == 1  # refused before it started: never ran on a
    assert len(a.events("sleep_started")) == 1
    assert first.events("job_refused")


def test_retries_wait_for_a_slave_to_come_back(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """A job that cannot start fails at once; with the method's retries it waits for a slave."""
    master = fleet.master("--connect_timeout", "2", "--ping_interval", "3600")
    gone = _toolbox(fleet, master, toolbox_env)
    gone.stop()
    client = _client(jobs, master)
    with pytest.raises(grpc.RpcError) as err:
        client.run(SLEEP, seconds="0")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    with ThreadPoolExecutor(max_workers=1) as pool:
        patient = pool.submit(client.run, "arko.testing.v1.Toolbox.Patient", seconds="0")
        master.wait_for_event("job_retry")
        back = _toolbox(fleet, master, toolbox_env, port=gone.port)
        assert patient.result(timeout=60).slave == back.address


def test_cancelled_and_abandoned_queued_jobs_leave_the_queue(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: list[Jobs]
) -> None:
    """A queued job cancelled by Jobs/Cancel, and one whose caller left, never run;
    the job queued after them runs next."""
    master = fleet.master()
    slave = _toolbox(fleet, master, toolbox_env, "--capacity", "1")
    client = _client(jobs, master)
    with ThreadPoolExecutor(max_workers=2) as pool:
        busy = pool.submit(client.run, SLEEP, seconds="1")
        wait_until(lambda: slave.events("sleep_started"), 15, "the first job")
        cancelled = client.start(SLEEP, seconds="0")
        cancelled_id = next(cancelled).job_id
        abandoned = client.start(SLEEP, seconds="0")
        abandoned_id = next(abandoned).job_id
        master.wait_for_event("job_queued", count=2)
        abandoned.cancel()  # type: ignore[attr-defined]
        record = client.stub.Cancel(jobs_pb2.CancelRequest(job_id=cancelled_id), timeout=10)
        assert record.state == jobs_pb2.CANCELLED and not record.slave
        wait_until(
            lambda: client.get(abandoned_id).state == jobs_pb2.CANCELLED, 15, "abandoned job ended"
        )
        last = pool.submit(client.run, SLEEP, seconds="0")
        assert last.result(timeout=30).slave == slave.address
        assert busy.result(timeout=30).state == jobs_pb2.SUCCEEDED
    assert len(slave.events("sleep_started")) == 2  # the first and the last only
    assert not client.get(abandoned_id).slave
