"""Every submission path on real daemons, checked where it counts: on the slave.

The record can say CANCELLED while the slave's handler runs on, and a caller's
call can fail on its own deadline whatever the master did; so these tests
read the slave's log (toolbox_plugin's ``sleep_started`` notes the deadline a
call arrived with, ``sleep_cancelled`` that its handler was cancelled).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import requests
from google.protobuf import duration_pb2

from arko.gen import register_pb2, register_pb2_grpc
from arko.testing import Daemon, Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc

TOOLBOX = ("--service", "toolbox_plugin:plugin")
SLEEP = "arko.testing.v1.Toolbox.Sleep"
STREAM = "MyPipelineLogs.Stream"
# Far above any deadline these tests set: the master's default --job_timeout is 3600 s.
SHORT = 2.0


class Jobs:
    """A blocking arko.v1.Jobs client; its channel closes with the ``with`` block."""

    def __init__(self, master: Daemon) -> None:
        self.channel = grpc.insecure_channel(master.address)
        self.stub = jobs_pb2_grpc.JobsStub(self.channel)

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()

    def run(self, request: jobs_pb2.RunRequest, timeout: float = 60) -> Iterator[jobs_pb2.JobEvent]:
        return self.stub.Run(request, timeout=timeout)  # type: ignore[no-any-return]

    def watch(self, job_id: str) -> Iterator[jobs_pb2.JobEvent]:
        request = jobs_pb2.WatchRequest(job_id=job_id)
        return self.stub.Watch(request, timeout=60)  # type: ignore[no-any-return]

    def get(self, job_id: str) -> jobs_pb2.Job:
        return self.stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=10)

    def ended(self, job_id: str) -> jobs_pb2.Job | None:
        """The job's record once it has ended, else None."""
        job = self.get(job_id)
        return (
            job if job.state in (jobs_pb2.SUCCEEDED, jobs_pb2.FAILED, jobs_pb2.CANCELLED) else None
        )


@pytest.fixture
def jobs() -> Iterator[Callable[[Daemon], Jobs]]:
    """Makes Jobs clients, all closed at the end of the test."""
    with contextlib.ExitStack() as clients:
        yield lambda master: clients.enter_context(Jobs(master))


def _http_master(fleet: Fleet) -> tuple[Daemon, str]:
    port = free_port()
    master = fleet.master("--http_port", str(port))
    master.wait_for_event("http_started")
    return master, f"http://127.0.0.1:{port}"


def _sleep(seconds: float, **fields: Any) -> jobs_pb2.RunRequest:
    request = jobs_pb2.RunRequest(method=SLEEP, **fields)
    request.args.update({"seconds": seconds})
    return request


def _assert_slave_call_ended_early(slave: Daemon) -> dict[str, Any]:
    """The slave's handler was cancelled, never finished; its ``sleep_started`` event."""
    slave.wait_for_event("sleep_cancelled")
    assert not slave.events("sleep_finished")
    return slave.events("sleep_started")[0]


@pytest.mark.parametrize("how", ["call_deadline", "timeout_field"])
def test_a_jobs_run_callers_deadline_reaches_the_slave(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[[Daemon], Jobs], how: str
) -> None:
    """Jobs/Run's gRPC deadline, or RunRequest.timeout, is the slave call's deadline.

    The caller's own deadline fails its call locally whatever the master
    does, so the proof is the deadline the slave's handler arrived with
    (without it, the 3600 s --job_timeout) and its cancellation there.
    """
    master = fleet.master()
    slave = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    client = jobs(master)
    if how == "call_deadline":
        run = client.run(_sleep(30), timeout=SHORT)
    else:
        run = client.run(_sleep(30, timeout=duration_pb2.Duration(seconds=int(SHORT))))
    with pytest.raises(grpc.RpcError) as err:
        list(run)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    started = _assert_slave_call_ended_early(slave)
    assert started["time_remaining"] is not None and started["time_remaining"] <= SHORT + 0.1
    if how == "timeout_field":
        (finished,) = [e for e in master.events("job_finished") if e["method"] == SLEEP]
        assert (finished["state"], finished["code"]) == ("failed", "DEADLINE_EXCEEDED")


@pytest.mark.parametrize("wait", [False, True])
def test_http_cancel_stops_the_slaves_call(
    fleet: Fleet, toolbox_env: dict[str, str], wait: bool
) -> None:
    """POST .../cancel ends the slave's handler, not only the record (detached or waited on)."""
    master, url = _http_master(fleet)
    slave = fleet.slave(master, *TOOLBOX, env=toolbox_env)
    with requests.Session() as http, ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(
            http.post, f"{url}/api/v1/run/{SLEEP}?wait={str(wait).lower()}", json={"seconds": 30}
        )
        slave.wait_for_event("sleep_started")
        if wait:
            listed = http.get(f"{url}/api/v1/jobs", params={"method": SLEEP}, timeout=30)
            (job,) = listed.json()["jobs"]
            job_id = job["id"]
        else:
            job_id = started.result(timeout=30).json()["id"]
        cancelled = http.post(
            f"{url}/api/v1/jobs/{job_id}/cancel", json={"reason": "wrong branch"}, timeout=30
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "CANCELLED"
        if wait:
            assert started.result(timeout=30).json()["state"] == "CANCELLED"
    _assert_slave_call_ended_early(slave)


def test_watchers_following_a_running_job_get_every_line_in_order(
    fleet: Fleet, jobs: Callable[[Daemon], Jobs]
) -> None:
    """Watch from the start, and from seq 0 once 150 lines went by: 400 lines each, in order."""
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0")
    client = jobs(master)
    request = jobs_pb2.RunRequest(method=STREAM, detach=True)
    request.args.update({"lines": 400, "interval": 0.01})
    (accepted,) = list(client.run(request))
    job_id = accepted.job_id
    passed_150 = threading.Event()

    def follow(signal: threading.Event | None) -> list[jobs_pb2.JobEvent]:
        events = []
        for event in client.watch(job_id):
            events.append(event)
            if signal is not None and event.output and json.loads(event.output)["number"] == 150:
                signal.set()
        return events

    with ThreadPoolExecutor(max_workers=2) as pool:
        early: Future[list[jobs_pb2.JobEvent]] = pool.submit(follow, passed_150)
        assert passed_150.wait(30), "the first watcher never saw line 150"
        assert client.get(job_id).state == jobs_pb2.RUNNING  # the late watcher joins mid-job
        late = pool.submit(follow, None)
        followed = [early.result(timeout=60), late.result(timeout=60)]
    for events in followed:
        assert [e.seq for e in events] == list(range(len(events)))
        numbers = [json.loads(e.output)["number"] for e in events if e.output]
        assert numbers == list(range(1, 401))
        assert events[-1].kind == jobs_pb2.JobEvent.FINISHED
        assert events[-1].job.state == jobs_pb2.SUCCEEDED


def _register(master: Daemon, slave: Daemon) -> None:
    with grpc.insecure_channel(master.address) as channel:
        reply = register_pb2_grpc.RegisterStub(channel).RegisterNewSlave(
            register_pb2.SlaveConfig(host="127.0.0.1", port=slave.port), timeout=10
        )
    assert reply.message == "done"


@pytest.mark.parametrize("path", ["jobs_run", "jobs_run_detached", "http_wait", "http_detached"])
def test_a_slave_refusing_as_full_sends_the_job_elsewhere_on_every_path(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[[Daemon], Jobs], path: str
) -> None:
    """Another master keeps slave a busy: this master's job, refused by a, runs on b.

    The slave refuses before its handler runs (capacity 1), so the job never
    started there and the master may send it on; nothing fails.
    """
    first, url = _http_master(fleet)
    second = fleet.master(db=fleet.database("second"))
    a, b = (fleet.slave(None, *TOOLBOX, "--capacity", "1", env=toolbox_env) for _ in range(2))
    for master in (first, second):
        for slave in (a, b):
            _register(master, slave)
    busy = jobs(second).run(_sleep(3))
    next(busy)  # ACCEPTED
    wait_until(lambda: a.events("sleep_started"), 15, "the second master's job on a")
    if path.startswith("jobs_run"):
        events = list(jobs(first).run(_sleep(0, detach=path.endswith("detached"))))
        job_id = events[0].job_id
    else:
        wait = path == "http_wait"
        reply = requests.post(
            f"{url}/api/v1/run/{SLEEP}?wait={str(wait).lower()}", json={"seconds": 0}, timeout=60
        )
        assert reply.status_code == (200 if wait else 202), reply.text
        job_id = reply.json()["id"]
    client = jobs(first)
    job = wait_until(lambda: client.ended(job_id), 30, "the job's end")
    assert (job.state, job.slave) == (jobs_pb2.SUCCEEDED, b.address), job
    assert len(a.events("call_refused")) == 1  # refused before it started: never ran on a
    assert len(a.events("sleep_started")) == 1
    assert first.events("job_refused")
    assert list(busy)[-1].job.slave == a.address
