"""The master on PostgreSQL: the same jobs, records and recovery as on SQLite.

Each test gets a fresh database on the machine's PostgreSQL (``postgres_url``),
dropped afterwards; an unreachable server fails the test, it is never skipped
quietly (see tests/postgres.py). Tests ask for ``postgres_url`` before
``fleet``: pytest tears fixtures down in reverse, so the masters stop before
their database is dropped under them.
"""

from __future__ import annotations

import json
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Daemon, Fleet, free_port, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc

# Each master here is on a PostgreSQL database of its own (or none), whatever
# the pass: the PostgreSQL pass would run the very same tests again.
pytestmark = pytest.mark.one_pass("its masters are on PostgreSQL in the SQLite pass already")

REQUEST = '{"method": "MyPipeline.Run", "params": {"param": "pg", "password": "parola"}}'


def _jobs(master: Daemon) -> tuple[grpc.Channel, jobs_pb2_grpc.JobsStub]:
    channel = grpc.insecure_channel(master.address)
    return channel, jobs_pb2_grpc.JobsStub(channel)


def _list(master: Daemon, *states: int) -> list[jobs_pb2.Job]:
    channel, stub = _jobs(master)
    with channel:
        request = jobs_pb2.ListJobsRequest(states=list(states), page_size=1000)
        return list(stub.List(request, timeout=10).jobs)


def test_grpcurl_job_through_a_master_on_postgres_survives_a_restart(
    postgres_url: str, fleet: Fleet, grpcurl: str
) -> None:
    """The README's grpcurl call works, and its record, secrets redacted, outlives the master."""
    master = fleet.master(db=postgres_url)
    fleet.slave(master, "--run_delay", "0")
    ran = subprocess.run(
        [grpcurl, "-plaintext", "-d", REQUEST, master.address, "Execution/ExecuteJob"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    job_id = json.loads(ran.stdout)["job_id"]
    assert master.stop() == 0
    again = fleet.master(db=postgres_url, port=master.port)
    channel, stub = _jobs(again)
    with channel:
        job = stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=10)
    assert (job.state, job.method, job.code) == (jobs_pb2.SUCCEEDED, "MyPipeline.Run", "OK")
    assert dict(job.params) == {"param": "pg", "password": "***"}
    assert "parola" not in job.result


def test_streamed_output_is_read_back_after_a_restart(postgres_url: str, fleet: Fleet) -> None:
    """A streamed job's kept output is in PostgreSQL: Watch replays it from a new master."""
    master = fleet.master(db=postgres_url)
    fleet.slave(master, "--run_delay", "0")
    channel, stub = _jobs(master)
    with channel:
        request = jobs_pb2.RunRequest(method="MyPipelineLogs.Stream")
        request.args.update({"lines": 500})
        events = list(stub.Run(request, timeout=60))
    job_id = events[0].job_id
    assert master.stop() == 0
    again = fleet.master(db=postgres_url, port=master.port)
    channel, stub = _jobs(again)
    with channel:
        replay = list(stub.Watch(jobs_pb2.WatchRequest(job_id=job_id), timeout=30))
    lines = [json.loads(e.output)["number"] for e in replay if e.kind == jobs_pb2.JobEvent.OUTPUT]
    assert lines == list(range(1, 501))
    assert replay[-1].kind == jobs_pb2.JobEvent.FINISHED
    assert replay[-1].state == jobs_pb2.SUCCEEDED


def test_kill_9_under_load_leaves_every_job_final(postgres_url: str, fleet: Fleet) -> None:
    """kill -9 mid-load: after a restart on the same port no job is queued or running.

    The jobs the slave was running when the master died come back
    ``INTERRUPTED`` (replayed from the master's journal, then settled in
    PostgreSQL).
    """
    master = fleet.master("--log_level", "debug", db=postgres_url)
    fleet.slave(master, "--run_delay", "2")
    channel = grpc.insecure_channel(master.address)
    stub = execution_pb2_grpc.ExecutionStub(channel)
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = [
            pool.submit(
                stub.ExecuteJob,
                execution_pb2.JobParams(method="MyPipeline.Run", params={"param": str(n)}),
                timeout=30,
            )
            for n in range(4)
        ]
        master.wait_for_event("job_dispatched", count=4)
        master.signal(signal.SIGKILL)
        assert master.proc is not None and master.proc.wait(10) == -signal.SIGKILL
        for call in calls:
            assert call.exception(timeout=30) is not None
    channel.close()
    dispatched = {e["job_id"] for e in master.events("job_dispatched")}
    again = fleet.master(db=postgres_url, port=master.port)
    jobs = {job.id: job for job in _list(again)}
    assert dispatched <= set(jobs)
    assert {jobs[i].state for i in dispatched} == {jobs_pb2.INTERRUPTED}
    assert not _list(again, jobs_pb2.QUEUED, jobs_pb2.RUNNING)


def test_masters_starting_together_on_a_new_database_all_serve(
    postgres_url: str, fleet: Fleet
) -> None:
    """Three masters creating the schema at once: one upgrades, the others wait, all serve.

    (Without the upgrade lock, two of three runs failed here: a master found
    half a schema or collided creating a table.)
    """
    masters = [fleet.master(db=postgres_url, wait=False) for _ in range(3)]
    for master in masters:
        master.wait_serving(timeout=30)
        assert master.events("master_started")


def test_the_database_password_never_reaches_the_log(postgres_url: str, fleet: Fleet) -> None:
    """A password in --db is shown as *** in the master's log (the server trusts loopback)."""
    with_password = postgres_url.replace("postgres@", "postgres:hunter2secret@", 1)
    assert with_password != postgres_url
    master = fleet.master(db=with_password)
    started = master.events("master_started")[0]
    assert ":***@" in started["db"]
    assert master.stop() == 0
    assert "hunter2secret" not in master.log_text()


def test_an_unreachable_database_is_a_clear_startup_error(fleet: Fleet) -> None:
    """A server nobody listens on: the master exits non-zero and says which database."""
    url = f"postgresql://postgres:topsecret@127.0.0.1:{free_port()}/nothing"
    master = fleet.master(db=url, wait=False)
    assert master.proc is not None
    code = master.proc.wait(30)
    assert code != 0
    text = master.log_text()
    assert "cannot use database postgresql://postgres:***@127.0.0.1" in text
    assert "topsecret" not in text
    wait_until(lambda: not master.alive(), 5, "the master to exit")
