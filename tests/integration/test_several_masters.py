"""Several masters on one PostgreSQL database, with real daemons.

Each test gets a fresh database (``postgres_url``, dropped afterwards). The
masters beat fast (``--heartbeat_interval 0.3``, dead after 3 s) so takeovers
happen within the test; slaves share the masters' join token, so any master
can call any slave, whichever master it registered with.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from arko.testing import Daemon, Fleet, cut_postgres_database, free_port, query, wait_until
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from tests import readme

# Each master here is on a PostgreSQL database of its own (or none), whatever
# the pass: the PostgreSQL pass would run the very same tests again.
pytestmark = pytest.mark.one_pass("its masters are on PostgreSQL in the SQLite pass already")

TOKEN = "several-masters-join-token"
MASTER_ENV = {"ARKO_MASTER_JOIN_TOKEN": TOKEN}
FAST = (
    "--heartbeat_interval",
    "0.3",
    "--master_timeout",
    "3",
    "--ping_timeout",
    "1",
    "--job_flush_interval",
    "0.2",
)
TOOLBOX = ("--service", "toolbox_plugin:plugin")
SLEEP = "arko.testing.v1.Toolbox.Sleep"
DEPLOY = "arko.testing.v1.Toolbox.Deploy"
FINAL = {jobs_pb2.SUCCEEDED, jobs_pb2.FAILED, jobs_pb2.CANCELLED, jobs_pb2.INTERRUPTED}


class Jobs:
    """A blocking arko.v1.Jobs client for one master."""

    def __init__(self, master: Daemon) -> None:
        self.channel = grpc.insecure_channel(master.address)
        self.stub = jobs_pb2_grpc.JobsStub(self.channel)

    def start(
        self, method: str, labels: dict[str, str] | None = None, **args: object
    ) -> Iterator[jobs_pb2.JobEvent]:
        request = jobs_pb2.RunRequest(method=method, labels=labels or {})
        request.args.update(args)
        return self.stub.Run(request, timeout=60)  # type: ignore[no-any-return]

    def run(
        self, method: str, labels: dict[str, str] | None = None, **args: object
    ) -> jobs_pb2.Job:
        return list(self.start(method, labels, **args))[-1].job

    def get(self, job_id: str) -> jobs_pb2.Job:
        return self.stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=10)


@pytest.fixture
def clients() -> Iterator[dict[str, Jobs]]:
    made: dict[str, Jobs] = {}
    yield made
    for client in made.values():
        client.channel.close()


def _masters(
    fleet: Fleet, db: str, count: int, *args: str, ping_interval: float = 1.0
) -> list[Daemon]:
    return [
        fleet.master(
            *FAST,
            "--ping_interval",
            str(ping_interval),
            "--name",
            f"m{i}",
            *args,
            db=db,
            env=MASTER_ENV,
        )
        for i in range(count)
    ]


def _slave(fleet: Fleet, masters: list[Daemon], env: dict[str, str], *args: str) -> Daemon:
    return fleet.slave(masters, *args, env={**env, "ARKO_SLAVE_JOIN_TOKEN": TOKEN})


def _client(clients: dict[str, Jobs], master: Daemon) -> Jobs:
    if master.address not in clients:
        clients[master.address] = Jobs(master)
    return clients[master.address]


def _stamp(event: dict[str, object]) -> float:
    return dt.datetime.fromisoformat(str(event["timestamp"])).timestamp()


def _pings(slave: Daemon, since: float, until: float) -> list[str]:
    """The masters that read the slave's status (one per ping) between two times."""
    return [str(e.get("master")) for e in slave.events("status_read") if since <= _stamp(e) < until]


def _sweeps(master: Daemon, since: float, until: float) -> int:
    """How many ping sweeps the master finished between two times (its debug log)."""
    return sum(since <= _stamp(e) < until for e in master.events("ping_sweep_done"))


def test_three_masters_share_four_slaves_and_ping_each_once_per_interval(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str], clients: dict[str, Jobs]
) -> None:
    """Every master runs jobs on every slave, whichever master it registered with,
    and each slave is pinged by one master, once per interval, not three times.

    "Once per interval" is read from the daemons' own logs: each sweep of the
    slave's master pings it once (its count of pings matches the master's
    count of sweeps over the window), and sweeps are at least an interval
    apart (no more pings than intervals in the window). A master slowed down
    by a busy machine sweeps less often; the window lasts until each master
    has swept five times, however long that takes.
    """
    masters = _masters(fleet, postgres_url, 3, "--log_level", "debug")
    by_name = {f"m{i}": m for i, m in enumerate(masters)}
    slaves = [
        _slave(
            fleet,
            [masters[i % 3]],
            toolbox_env,
            *TOOLBOX,
            "--label",
            f"n={i}",
            "--log_level",
            "debug",
        )
        for i in range(4)
    ]
    for master in masters:
        client = _client(clients, master)
        for i, slave in enumerate(slaves):
            # Each master must learn the slaves the others registered (a beat).
            job = wait_until(
                lambda c=client, n=i: _try(lambda: c.run(SLEEP, {"n": str(n)}, seconds=0)),
                15,
                f"{master.address} to run a job on slave n={i}",
            )
            assert (job.state, job.slave) == (jobs_pb2.SUCCEEDED, slave.address)
    time.sleep(3)  # leases settle: each master holds its share
    start = time.time()
    wait_until(
        lambda: all(_sweeps(m, start, time.time()) >= 5 for m in masters),
        60,
        "each master to sweep five times",
    )
    end = time.time()
    for slave in slaves:
        pings = _pings(slave, start, end)
        assert len(set(pings)) == 1, (slave.address, Counter(pings))
        owner = by_name[pings[0]]
        # A sweep that straddles an edge of the window may count on one side only.
        assert abs(len(pings) - _sweeps(owner, start, end)) <= 1, (slave.address, pings)
        assert len(pings) <= (end - start) / 1.0 + 1, (slave.address, end - start, pings)
    owners = {_pings(s, start, end)[0] for s in slaves}
    assert len(owners) >= 2, owners  # shared out, not all on one master


def _try(call):  # type: ignore[no-untyped-def]
    """``call()``, or None while it fails (for wait_until)."""
    try:
        return call()
    except grpc.RpcError:
        return None


def test_a_job_started_on_one_master_is_watched_live_from_another(
    postgres_url: str, fleet: Fleet, clients: dict[str, Jobs], grpcurl: str
) -> None:
    """Watch on B follows A's job as it runs (output arrives before the end), and
    Get and List on B see it; Cancel on B stops a job running on A."""
    a, b = _masters(fleet, postgres_url, 2)
    _slave(fleet, [a], {}, "--run_delay", "0")
    stream = _client(clients, a).start("MyPipelineLogs.Stream", lines=8, interval=0.5)
    first = next(stream)
    job_id = first.job_id
    rest: list[jobs_pb2.JobEvent] = []
    reader = threading.Thread(target=lambda: rest.extend(stream))
    reader.start()
    on_b = _client(clients, b)
    seen: list[tuple[float, jobs_pb2.JobEvent]] = []
    for event in on_b.stub.Watch(jobs_pb2.WatchRequest(job_id=job_id), timeout=60):
        seen.append((time.monotonic(), event))
    reader.join(30)
    finished_at = next(t for t, e in seen if e.kind == jobs_pb2.JobEvent.FINISHED)
    outputs = [(t, e) for t, e in seen if e.kind == jobs_pb2.JobEvent.OUTPUT]
    assert [json.loads(e.output)["number"] for _, e in outputs] == list(range(1, 9))
    assert outputs[0][0] < finished_at - 2, "B saw the output only at the end"
    assert [e.output for e in rest if e.kind == jobs_pb2.JobEvent.OUTPUT] == [
        e.output for _, e in outputs
    ]
    assert seen[-1][1].state == jobs_pb2.SUCCEEDED
    assert on_b.get(job_id).state == jobs_pb2.SUCCEEDED
    listed = on_b.stub.List(jobs_pb2.ListJobsRequest(page_size=10), timeout=10).jobs
    assert job_id in [j.id for j in listed]
    # grpcurl takes a dns:/// target too (docs/several-masters.md, "Clients").
    got = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-d",
            json.dumps({"job_id": job_id}),
            f"dns:///localhost:{b.port}",
            "arko.v1.Jobs/Get",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["state"] == "SUCCEEDED"

    long = _client(clients, a).start("MyPipelineLogs.Stream", lines=100, interval=0.2)
    long_id = next(long).job_id
    wait_until(
        lambda: on_b.get(long_id).state == jobs_pb2.RUNNING,
        10,
        f"B to see it running: {on_b.get(long_id)}",
    )
    cancelled = on_b.stub.Cancel(
        jobs_pb2.CancelRequest(job_id=long_id, reason="test on B"), timeout=30
    )
    assert cancelled.state == jobs_pb2.CANCELLED
    with pytest.raises(grpc.RpcError) as err:
        list(long)
    assert err.value.code() == grpc.StatusCode.CANCELLED


def test_killing_one_master_under_load_loses_no_job_and_no_ping(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str], clients: dict[str, Jobs]
) -> None:
    """kill -9 one of three masters while all run jobs: callers of the others see no
    error, every job any caller heard of ends in a final state, the dead master's
    running jobs become INTERRUPTED, and its slaves go on being pinged."""
    masters = _masters(fleet, postgres_url, 3)
    slaves = [
        _slave(fleet, [masters[i]], toolbox_env, *TOOLBOX, "--log_level", "debug") for i in range(3)
    ]
    ids: list[str] = []
    errors: dict[int, list[str]] = {0: [], 1: [], 2: []}
    stop = time.monotonic() + 8

    def load(index: int) -> None:
        client = Jobs(masters[index])
        try:
            for _ in range(200):  # bounded, and by time
                if time.monotonic() > stop:
                    return
                try:
                    for event in client.start(SLEEP, seconds=0.3):
                        if event.kind == jobs_pb2.JobEvent.ACCEPTED:
                            ids.append(event.job_id)
                except grpc.RpcError as exc:
                    errors[index].append(exc.code().name)
                    if index == 0:
                        return  # its master is gone
        finally:
            client.channel.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        running = [pool.submit(load, i % 3) for i in range(6)]
        time.sleep(3)
        masters[0].kill()
        killed_at = time.time()
        for future in running:
            future.result(timeout=60)
    assert errors[1] == [] and errors[2] == [], errors
    survivor = _client(clients, masters[1])

    def all_final() -> bool:
        return all(survivor.get(job_id).state in FINAL for job_id in ids)

    wait_until(all_final, 15, "every job to reach a final state")
    states = Counter(jobs_pb2.JobState.Name(survivor.get(j).state) for j in ids)
    assert states["SUCCEEDED"] > 10, states
    assert states["INTERRUPTED"] >= 1, states  # m0 had jobs running when it died
    taken = [e for m in masters[1:] for e in m.events("master_taken_over")]
    assert [e["master"] for e in taken] == ["m0"], taken
    # A client spreading calls over all three (round_robin) goes on past the dead one.
    target = "ipv4:" + ",".join(m.address for m in masters)
    options = [("grpc.lb_policy_name", "round_robin")]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        for _ in range(9):
            request = jobs_pb2.RunRequest(method=SLEEP)
            request.args.update({"seconds": 0})
            assert list(stub.Run(request, timeout=30))[-1].job.state == jobs_pb2.SUCCEEDED
    taken_at = _stamp(taken[0])
    assert killed_at < taken_at < killed_at + 3 + 2, (killed_at, taken_at)
    time.sleep(max(0.0, taken_at + 4 - time.time()))
    later = _pings(slaves[0], taken_at + 1, time.time())
    assert later and "m0" not in later, later


def test_max_concurrency_one_holds_across_three_masters(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str]
) -> None:
    """Deploy (max_concurrency: 1) called through all three masters at once never overlaps."""
    masters = _masters(fleet, postgres_url, 3)
    slaves = [_slave(fleet, masters, toolbox_env, *TOOLBOX) for _ in range(2)]
    for master in masters:  # each master knows both slaves before the race
        client = Jobs(master)
        wait_until(lambda c=client: _try(lambda: c.run(SLEEP, seconds=0)), 15, "a first job")
        client.channel.close()

    def deploy(index: int) -> int:
        client = Jobs(masters[index % 3])
        try:
            return client.run(DEPLOY, seconds=0.3).state
        finally:
            client.channel.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(deploy, range(6)))
    assert done == [jobs_pb2.SUCCEEDED] * 6
    spans = []
    for slave in slaves:
        starts = [_stamp(e) for e in slave.events("sleep_started")]
        ends = [_stamp(e) for e in slave.events("sleep_finished")]
        spans += list(zip(starts, ends, strict=True))
    deploys = sorted(spans)[-6:]  # after the warm-up sleeps of 0 s
    for (_, end), (begin, _) in itertools.pairwise(deploys):
        assert end <= begin, deploys


def test_a_restarted_master_interrupts_only_its_own_jobs(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str], clients: dict[str, Jobs]
) -> None:
    """B is killed and restarted under the same name while A runs a job: A's job succeeds."""
    a, b = _masters(fleet, postgres_url, 2)
    _slave(fleet, [a, b], toolbox_env, *TOOLBOX)
    # The job must outlast B's restart, or there is nothing running for B's
    # recovery to leave alone: a restart that takes longer than wait_serving's
    # 15 s fails the test anyway, and on a busy machine it took more than 4 s.
    stream = _client(clients, a).start(SLEEP, seconds=20)
    job_id = next(stream).job_id
    b.kill()
    again = fleet.master(*FAST, "--name", "m1", port=b.port, db=postgres_url, env=MASTER_ENV)
    restarted = _client(clients, again)
    assert restarted.get(job_id).state == jobs_pb2.RUNNING  # B's recovery left it alone
    assert list(stream)[-1].job.state == jobs_pb2.SUCCEEDED
    wait_until(lambda: restarted.get(job_id).state == jobs_pb2.SUCCEEDED, 10, "the record")


def test_a_master_cut_off_from_the_database_stops_pinging_then_comes_back(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str], clients: dict[str, Jobs]
) -> None:
    """Past --master_timeout without its database a master stops pinging (others
    may hold its leases by then); once the database is back it beats, pings and
    runs jobs again, without a restart."""
    (master,) = _masters(fleet, postgres_url, 1)
    slave = _slave(fleet, [master], toolbox_env, *TOOLBOX, "--log_level", "debug")
    client = _client(clients, master)
    wait_until(lambda: _try(lambda: client.run(SLEEP, seconds=0)), 15, "a first job")
    wait_until(lambda: _pings(slave, 0, time.time()), 15, "a first ping")  # pings are seen
    cut_postgres_database(postgres_url)
    try:
        failed = master.wait_for_event("heartbeat_failed")
        wait_until(  # master_timeout is 3 s: the next failed beat finds itself stale
            lambda: any(_stamp(e) > _stamp(failed) + 4 for e in master.events("heartbeat_failed")),
            15,
            "a failed heartbeat past --master_timeout",
        )
        with pytest.raises(grpc.RpcError) as refused:  # a job it cannot record is not run
            client.run(SLEEP, seconds=0)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "could not be recorded" in str(refused.value.details())
        quiet_from = time.time()
        time.sleep(2.5)  # two and a half ping intervals
        assert not _pings(slave, quiet_from, time.time())
    finally:
        cut_postgres_database(postgres_url, cut=False)
    back = time.time()
    wait_until(
        lambda: query(
            postgres_url,
            "SELECT 1 FROM master WHERE id = ? AND heartbeat_at > to_timestamp(?)",
            "m0",
            back,
        ),
        15,
        "the master to beat again",
    )
    wait_until(lambda: _pings(slave, back, time.time()), 15, "the master to ping again")
    assert client.run(SLEEP, seconds=0).state == jobs_pb2.SUCCEEDED


def test_manual_snippet_registers_a_slave_with_every_master(
    postgres_url: str, fleet: Fleet, tmp_path: Path, clients: dict[str, Jobs]
) -> None:
    """The manual's commands, with the variables they export, make a fleet that works.

    Its ``...`` token becomes one of the test's and its database and
    addresses the test's own; the plug-in it names is a user's module
    serving the example pipeline. Every daemon gets every exported variable,
    as one shell that ran the ``export`` lines would give them.
    """
    snippet = readme.blocks(readme.read("docs/several-masters.md"), lang="")[0]
    env: dict[str, str] = {}
    masters: list[Daemon] = []
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("")
    (project / "mypkg" / "build.py").write_text("from arko.slave.mypipeline import plugin\n")
    for argv in readme.commands(snippet):
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            env[name] = TOKEN if value == "..." else postgres_url if name.endswith("_DB") else value
        elif argv[0] == "arko-master":
            at = argv.index("--port")
            masters.append(fleet.master(*argv[1:at], *argv[at + 2 :], db=postgres_url, env=env))
        else:
            assert argv[:2] == ["arko-slave", "--master"], shlex.join(argv)
            assert len(argv[2].split(",")) == len(masters), argv[2]
            port = free_port()
            slave = Daemon(
                "slave",
                port,
                ["--master", ",".join(m.address for m in masters), *argv[3:]],
                fleet.workdir / f"readme-slave-{port}.log",
                env=env,
                cwd=project,
                program=[str(Path(sys.executable).parent / "arko-slave")],
            )
            fleet.daemons.append(slave)
            slave.start().wait_serving()
            slave.wait_for_event("registered", count=len(masters))
    assert len(masters) == 3
    job = _client(clients, masters[-1]).run("MyPipeline.DryRun", param="x")
    assert job.state == jobs_pb2.SUCCEEDED, job.error
