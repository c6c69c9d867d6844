"""Child jobs through the real daemons: a pipeline handler runs jobs with arko.sdk.

The slaves serve the test Pipeline service (tests/fixtures/pipeline_plugin.py),
whose handlers run Toolbox children through ``JobContext``. What a handler
did is read back where it happened: the slaves' logs (``sleep_started``,
``sleep_cancelled``, ``pipeline_cancelled``) and the records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Daemon, Fleet, wait_until
from arko.v1 import admin_pb2, admin_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from tests.pki import CertificateAuthority

SERVICES = ("--service", "toolbox_plugin:plugin,pipeline_plugin:plugin")
PIPELINE = "arko.testing.v1.Pipeline"
SLEEP = "arko.testing.v1.Toolbox.Sleep"
ECHO = "arko.testing.v1.Toolbox.Echo"
FINAL = {jobs_pb2.SUCCEEDED, jobs_pb2.FAILED, jobs_pb2.CANCELLED, jobs_pb2.INTERRUPTED}
CLIENT_TOKEN = "child-jobs-client-token"
Metadata = tuple[tuple[str, str], ...]


class Jobs:
    """A blocking arko.v1.Jobs client for one master, with the metadata it is given."""

    def __init__(
        self,
        master: Daemon,
        metadata: Metadata = (),
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.channel = (
            grpc.secure_channel(master.address, credentials)
            if credentials
            else grpc.insecure_channel(master.address)
        )
        self.stub = jobs_pb2_grpc.JobsStub(self.channel)
        self.metadata = metadata

    def run(self, method: str, timeout: float | None = None, **args: object) -> jobs_pb2.Job:
        """Run a job to its end; its record."""
        request = jobs_pb2.RunRequest(method=method)
        request.args.update(args)
        if timeout is not None:
            request.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout)))
        events = []
        with contextlib.suppress(grpc.RpcError):  # a failed job ends its call with its status
            events.extend(self.stub.Run(request, timeout=120, metadata=self.metadata))
        assert events and events[-1].kind == jobs_pb2.JobEvent.FINISHED, events
        return events[-1].job

    def start(self, method: str, **args: object) -> str:
        """Start a detached job; its id."""
        request = jobs_pb2.RunRequest(method=method, detach=True)
        request.args.update(args)
        return next(iter(self.stub.Run(request, timeout=30, metadata=self.metadata))).job_id

    def get(self, job_id: str) -> jobs_pb2.Job:
        request = jobs_pb2.GetJobRequest(job_id=job_id)
        return self.stub.Get(request, timeout=10, metadata=self.metadata)

    def children(self, parent_id: str) -> list[jobs_pb2.Job]:
        request = jobs_pb2.ListJobsRequest(parent_id=parent_id)
        return list(self.stub.List(request, timeout=10, metadata=self.metadata).jobs)

    def ended(self, job_id: str) -> jobs_pb2.Job | None:
        job = self.get(job_id)
        return job if job.state in FINAL else None


@pytest.fixture
def jobs() -> Iterator[Callable[..., Jobs]]:
    """Makes Jobs clients, all closed at the end of the test."""
    made: list[Jobs] = []

    def make(
        master: Daemon, metadata: Metadata = (), credentials: grpc.ChannelCredentials | None = None
    ) -> Jobs:
        made.append(Jobs(master, metadata, credentials))
        return made[-1]

    yield make
    for client in made:
        client.channel.close()


def _count(slaves: list[Daemon], event: str) -> int:
    return sum(len(s.events(event)) for s in slaves)


def _two_slaves(fleet: Fleet, master: Daemon, env: dict[str, str]) -> list[Daemon]:
    # Two places each: the parent takes one, so three children need both slaves.
    return [fleet.slave(master, *SERVICES, "--capacity", "2", env=env) for _ in range(2)]


def test_three_children_fan_out_over_two_slaves_and_fan_in(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs]
) -> None:
    """A handler's asyncio.gather over job.run runs three children on both slaves
    and gets their records back; they are listed under their parent, and run no
    longer than the parent's own timeout."""
    master = fleet.master("--policy", "least_loaded")
    slaves = _two_slaves(fleet, master, toolbox_env)
    client = jobs(master)

    parent = client.run(f"{PIPELINE}.FanOut", timeout=40, count=3, seconds=1.0)
    assert parent.state == jobs_pb2.SUCCEEDED, parent.error
    assert (parent.trigger, parent.parent_id, parent.depth) == ("api", "", 0)
    result = json.loads(parent.result)
    assert set(result["slaves"]) == {s.address for s in slaves}

    children = client.children(parent.id)
    assert sorted(c.id for c in children) == sorted(result["children"])
    for child in children:
        assert (child.trigger, child.parent_id, child.depth) == ("job", parent.id, 1)
        assert child.state == jobs_pb2.SUCCEEDED and child.method == SLEEP
    # The children's calls arrived bounded by the parent's 40 s, not --job_timeout's
    # hour (gRPC's deadline header rounds up to coarser units, so a bit over 40 s).
    remaining = [e["time_remaining"] for s in slaves for e in s.events("sleep_started")]
    assert len(remaining) == 3 and all(r is not None and r < 60 for r in remaining), remaining

    # job.start then job.wait: the same, detached.
    detached = client.run(f"{PIPELINE}.FanOut", count=3, seconds=0.2, detach=True)
    assert detached.state == jobs_pb2.SUCCEEDED, detached.error
    listed = client.children(detached.id)
    assert len(listed) == 3 and all(c.detached and c.trigger == "job" for c in listed)


def test_over_mutual_tls_the_sdk_dials_the_master_with_the_slaves_certificate(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs], tmp_path: Path
) -> None:
    """With mutual TLS on every link, a handler's children reach the master it
    registered with over TLS, presenting the slave's own certificate."""
    (tmp_path / "pki").mkdir()
    ca = CertificateAuthority(tmp_path / "pki")
    client = ca.issue("ci-client", client=True)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_path.read_bytes(),
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )
    master = fleet.master(*ca.daemon_flags(ca.issue("arko-master")), credentials=credentials)
    slave_flags = ca.daemon_flags(ca.issue("slave-1"))
    fleet.slave(master, *SERVICES, *slave_flags, env=toolbox_env, credentials=credentials)

    parent = jobs(master, credentials=credentials).run(f"{PIPELINE}.FanOut", count=2, seconds=0)
    assert parent.state == jobs_pb2.SUCCEEDED, parent.error
    assert len(json.loads(parent.result)["children"]) == 2


def test_a_failing_child_raises_job_failed_in_its_parent(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs]
) -> None:
    """job.run raises JobFailed carrying the child's record; the handler's error names it."""
    master = fleet.master()
    slave = fleet.slave(master, *SERVICES, env=toolbox_env)
    client = jobs(master)

    parent = client.run(f"{PIPELINE}.FailChild")
    assert parent.state == jobs_pb2.FAILED and parent.code == "FAILED_PRECONDITION"
    [child] = client.children(parent.id)
    assert child.state == jobs_pb2.FAILED and child.code == "FAILED_PRECONDITION"
    assert child.id in parent.error and "Toolbox.Fail" in parent.error and "boom" in parent.error
    [seen] = slave.events("child_failed")
    assert seen["child"] == child.id  # JobFailed.job is the child's record


def test_cancelling_the_parent_cancels_every_childs_handler(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs]
) -> None:
    """Jobs/Cancel of a parent reaches each running child's handler, on both slaves."""
    master = fleet.master("--policy", "least_loaded")
    slaves = _two_slaves(fleet, master, toolbox_env)
    client = jobs(master)

    parent_id = client.start(f"{PIPELINE}.FanOut", count=3, seconds=300)
    wait_until(lambda: _count(slaves, "sleep_started") == 3, 30, "three children running")
    client.stub.Cancel(jobs_pb2.CancelRequest(job_id=parent_id, reason="test"), timeout=30)

    wait_until(
        lambda: _count(slaves, "sleep_cancelled") == 3, 30, "every child's handler cancelled"
    )
    wait_until(lambda: _count(slaves, "pipeline_cancelled") == 1, 30, "the parent's handler too")
    assert client.get(parent_id).state == jobs_pb2.CANCELLED
    children = client.children(parent_id)
    assert len(children) == 3 and {c.state for c in children} == {jobs_pb2.CANCELLED}
    assert {s.address for s in slaves} == {c.slave for c in children} | {
        client.get(parent_id).slave
    }


def test_a_parent_that_ends_cancels_its_children_unless_they_outlive_it(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs], tmp_path: Path
) -> None:
    """job.start's child ends with its parent; one started with outlive_parent runs on."""
    master = fleet.master()
    slave = fleet.slave(master, *SERVICES, env=toolbox_env)
    client = jobs(master)

    go = tmp_path / "go"
    parent_id = client.start(f"{PIPELINE}.Abandon", seconds=300, file=str(go))
    wait_until(lambda: len(slave.events("sleep_started")) == 2, 30, "both children running")
    go.touch()
    parent = wait_until(lambda: client.ended(parent_id), 30, "the parent to return")
    assert parent.state == jobs_pb2.SUCCEEDED, parent.error
    ends, outlives = json.loads(parent.result)["children"]
    ended = wait_until(lambda: client.ended(ends), 30, "the child to end with its parent")
    assert ended.state == jobs_pb2.CANCELLED
    assert ended.cancelled_by == f"parent job {parent.id} ended"
    wait_until(lambda: slave.events("sleep_cancelled"), 30, "the ended child's handler cancelled")
    lives = client.get(outlives)
    assert lives.state == jobs_pb2.RUNNING and lives.outlive_parent
    assert len(slave.events("sleep_cancelled")) == 1
    client.stub.Cancel(jobs_pb2.CancelRequest(job_id=outlives), timeout=30)
    wait_until(lambda: len(slave.events("sleep_cancelled")) == 2, 30, "the other one, on demand")


def test_children_nest_no_deeper_than_max_job_depth(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs]
) -> None:
    """A method that runs itself is refused FAILED_PRECONDITION past --max_job_depth."""
    master = fleet.master("--max_job_depth", "2")
    fleet.slave(master, *SERVICES, env=toolbox_env)
    client = jobs(master)

    top = client.run(f"{PIPELINE}.Recurse")
    assert top.state == jobs_pb2.FAILED and top.code == "FAILED_PRECONDITION", top.error
    [first] = client.children(top.id)
    [second] = client.children(first.id)
    assert (first.depth, second.depth) == (1, 2)
    assert client.children(second.id) == []  # depth 3 was never recorded
    assert second.code == "FAILED_PRECONDITION" and "--max_job_depth 2" in second.error


def test_a_job_token_reaches_only_its_own_children_while_its_job_runs(
    fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs], tmp_path: Path
) -> None:
    """With clients held to a bearer token, a job token stands in for it on its own
    children only: no Admin, no Execution, no other job, and nothing once its job ended.
    The token is kept only as its SHA-256 and never logged."""
    master = fleet.master(env={"ARKO_MASTER_CLIENT_TOKEN": CLIENT_TOKEN})
    slave = fleet.slave(master, *SERVICES, env=toolbox_env)
    client = jobs(master, (("authorization", f"Bearer {CLIENT_TOKEN}"),))
    unrelated = client.run(ECHO, name="other")

    leaked = tmp_path / "token"
    parent_id = client.start(f"{PIPELINE}.Leak", file=str(leaked), seconds=300)
    wait_until(leaked.exists, 30, "the handler to write its job token")
    job_id, token = leaked.read_text().split()
    assert job_id == parent_id
    as_job = jobs(master, (("arko-job-id", job_id), ("arko-job-token", token)))

    child_id = as_job.start(ECHO, name="child")  # no bearer token needed
    child = wait_until(lambda: as_job.ended(child_id), 30, "the child to finish")
    assert (child.parent_id, child.trigger, child.depth) == (parent_id, "job", 1)
    assert [c.id for c in as_job.children(parent_id)] == [child_id]

    def refused(call: Callable[[], object]) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        return caught.value

    admin = admin_pb2_grpc.AdminStub(as_job.channel)
    for error in (
        refused(lambda: admin.ListSlaves(admin_pb2.ListSlavesRequest(), metadata=as_job.metadata)),
        refused(
            lambda: execution_pb2_grpc.ExecutionStub(as_job.channel).ExecuteJob(
                execution_pb2.JobParams(method=ECHO), metadata=as_job.metadata
            )
        ),
        refused(lambda: as_job.get(unrelated.id)),
        refused(lambda: as_job.get(parent_id)),  # itself is no child of its own
        refused(lambda: as_job.children(unrelated.id)),
    ):
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
        assert "may only start and read its own child jobs" in (error.details() or "")

    wrong = jobs(master, (("arko-job-id", job_id), ("arko-job-token", token[::-1])))
    error = refused(lambda: wrong.get(child_id))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "wrong job token" in str(
        error.details()
    )

    client.stub.Cancel(
        jobs_pb2.CancelRequest(job_id=parent_id), timeout=30, metadata=client.metadata
    )
    error = refused(lambda: as_job.get(child_id))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "has ended" in str(error.details())

    master.stop()
    [(stored,)] = fleet.query("SELECT token_hash FROM job WHERE id = ?", parent_id)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    for daemon in (master, slave):
        assert token not in daemon.log_text()
    database = fleet.database()
    if isinstance(database, Path):  # SQLite: the file itself holds no clear token
        assert token.encode() not in database.read_bytes()


@pytest.mark.one_pass("its masters are on PostgreSQL in the SQLite pass already")
def test_with_several_masters_a_parent_on_one_runs_its_children_through_another(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str], jobs: Callable[..., Jobs]
) -> None:
    """Master A sends the parent to a slave registered only with master B, which
    checks the job token against the shared database and runs the children; A
    lists them, and cancelling the parent on A cancels them on B."""
    env = {"ARKO_MASTER_JOIN_TOKEN": "child-jobs-join-token"}
    fast = ("--heartbeat_interval", "0.3", "--job_flush_interval", "0.2")
    a, b = (fleet.master(*fast, "--name", n, db=postgres_url, env=env) for n in ("a", "b"))
    slave_env = {**toolbox_env, "ARKO_SLAVE_JOIN_TOKEN": "child-jobs-join-token"}
    slave = fleet.slave(b, *SERVICES, env=slave_env)
    on_a = jobs(a)
    wait_until(lambda: on_a.run(ECHO).state == jobs_pb2.SUCCEEDED, 30, "A to know B's slave")

    parent = on_a.run(f"{PIPELINE}.FanOut", count=2, seconds=0.2)
    assert parent.state == jobs_pb2.SUCCEEDED, parent.error
    children = on_a.children(parent.id)
    assert len(children) == 2 and {c.trigger for c in children} == {"job"}
    masters = dict(fleet.query("SELECT id, master FROM job", db=postgres_url))
    assert masters[parent.id] == "a"
    assert {masters[c.id] for c in children} == {"b"}

    parent_id = on_a.start(f"{PIPELINE}.FanOut", count=2, seconds=300)
    wait_until(lambda: len(slave.events("sleep_started")) == 4, 30, "two more children running")
    on_a.stub.Cancel(jobs_pb2.CancelRequest(job_id=parent_id), timeout=30)
    wait_until(lambda: len(slave.events("sleep_cancelled")) == 2, 30, "both children cancelled")
    ended = [
        wait_until(lambda c=c: on_a.ended(c.id), 30, "records") for c in on_a.children(parent_id)
    ]
    assert {c.state for c in ended} == {jobs_pb2.CANCELLED}
