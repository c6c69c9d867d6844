"""Bad input wherever it enters: huge jobs, broken slaves, broken databases, fuzzing."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arko.gen import execution_pb2, execution_pb2_grpc, register_pb2, register_pb2_grpc
from arko.master.store.migrations import LATEST
from arko.testing import Daemon, Fleet, free_port, is_postgres_url, query, wait_until

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Codes a master may answer random jobs and registrations with; never UNKNOWN/INTERNAL.
PROPER_JOB_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def test_too_many_parameters_is_resource_exhausted(fleet: Fleet, client_for) -> None:
    """Past --max_params the job answers RESOURCE_EXHAUSTED naming the limit."""
    master = fleet.master("--max_params", "3")
    fleet.slave(master)
    with pytest.raises(grpc.RpcError) as err:
        client_for(master).run("MyPipeline.DryRun", a="1", b="2", c="3", d="4")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit is 3" in err.value.details()


def test_parameters_past_max_param_bytes_are_resource_exhausted(fleet: Fleet, client_for) -> None:
    """Parameters past --max_param_bytes are refused naming that limit.

    The message stays far under the default --max_message_bytes, so only the
    parameter limit can refuse it.
    """
    master = fleet.master("--max_param_bytes", "1000")
    fleet.slave(master)
    client = client_for(master)
    with pytest.raises(grpc.RpcError) as err:
        client.run("MyPipeline.DryRun", param="x" * 2000)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "parameters total 2005 bytes; the limit is 1000" in err.value.details()
    assert "done" in client.run("MyPipeline.DryRun", param="x" * 990)


def test_message_past_max_message_bytes_is_resource_exhausted(fleet: Fleet, client_for) -> None:
    """A request past --max_message_bytes is refused naming that limit.

    --max_param_bytes is raised far above the request, so only the message
    limit can refuse it.
    """
    master = fleet.master("--max_message_bytes", "100000", "--max_param_bytes", "10000000")
    fleet.slave(master)
    client = client_for(master)
    with pytest.raises(grpc.RpcError) as err:
        client.run("MyPipeline.DryRun", param="x" * 200_000)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = err.value.details()
    assert "larger than max" in details and "vs. 100000)" in details, details
    assert "done" in client.run("MyPipeline.DryRun", param="x" * 90_000)


@contextlib.contextmanager
def _bad_slave(mode: str) -> Iterator[int]:
    """Run tests/fixtures/bad_slave.py in ``mode`` on a free port; yield the port."""
    port = free_port()
    bad = subprocess.Popen(
        [sys.executable, str(FIXTURES / "bad_slave.py"), str(port), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bad.stdout is not None and bad.stdout.readline().strip() == "bad_slave_ready"
        yield port
    finally:
        bad.kill()
        bad.wait(10)


def _register(master: Daemon, port: int) -> str:
    with grpc.insecure_channel(master.address) as channel:
        stub = register_pb2_grpc.RegisterStub(channel)
        reply = stub.RegisterNewSlave(
            register_pb2.SlaveConfig(host="127.0.0.1", port=port), timeout=10
        )
    return str(reply.message)


@pytest.mark.parametrize("mode", ["garbage", "hang"])
def test_broken_reflection_marks_the_slave_down(fleet: Fleet, client_for, mode: str) -> None:
    """A slave whose reflection answers garbage or nothing is kept down; others still work."""
    master = fleet.master("--ping_timeout", "1")
    good = fleet.slave(master, "--run_delay", "0")
    with _bad_slave(mode) as port:
        assert _register(master, port) == "done"
        down = [e for e in master.events("slave_down") if e["slave"] == f"127.0.0.1:{port}"]
        assert down and ("reflection" in down[0]["reason"] or "no answer" in down[0]["reason"])
        rows = dict(fleet.query("SELECT port, status FROM slave"))
        assert rows == {good.port: 1, port: 0}
        assert "done" in client_for(master).run("MyPipeline.DryRun")


def test_not_serving_slave_is_counted_down(fleet: Fleet) -> None:
    """A slave that answers, but whose health says NOT_SERVING, is kept down for that reason."""
    master = fleet.master()
    with _bad_slave("not_serving") as port:
        assert _register(master, port) == "done"
        down = [e for e in master.events("slave_down") if e["slave"] == f"127.0.0.1:{port}"]
        assert [e["reason"] for e in down] == ["health check answers NOT_SERVING"]
        assert fleet.query("SELECT port, status FROM slave") == [(port, 0)]


def _start_master_on(db: Path | str) -> subprocess.CompletedProcess[str]:
    """Run arko-master on ``db`` (it is expected to refuse to start)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "arko.master",
            "--db",
            str(db),
            "--port",
            str(free_port()),
            "--listen_host",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.sqlite_only("a file that is not a SQLite database")
def test_corrupt_database_is_a_clear_start_error(tmp_path: Path) -> None:
    """A database file that is not SQLite stops the master at start with a sentence."""
    db = tmp_path / "arko.db"
    db.write_bytes(b"this is not a database" * 100)
    out = _start_master_on(db)
    assert out.returncode == 2
    assert f"cannot use database {db}" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert db.read_bytes() == b"this is not a database" * 100


@pytest.mark.sqlite_only("a SQLite path that cannot be created")
def test_unwritable_database_path_is_a_clear_start_error(tmp_path: Path) -> None:
    """A database path under a regular file (never writable, even for root) fails clearly."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = _start_master_on(blocker / "arko.db")
    assert out.returncode == 2
    assert "cannot use database" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.sqlite_only("a SQLite file of 0.1; PostgreSQL came later (its path: test_store)")
def test_database_of_the_first_release_is_upgraded(fleet: Fleet) -> None:
    """A 0.1 database (slave table only, user_version 0) opens with its slaves intact."""
    db = fleet.workdir / "old.db"
    slave = fleet.slave(None, "--run_delay", "0")
    with sqlite3.connect(db) as conn:
        conn.execute(
            'CREATE TABLE "slave" ("id" INTEGER NOT NULL PRIMARY KEY, "host" VARCHAR(255) '
            'NOT NULL, "port" INTEGER NOT NULL, "status" INTEGER NOT NULL, "methods" TEXT '
            'NOT NULL, "registered_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL)'
        )
        conn.execute('CREATE UNIQUE INDEX "slave_host_port" ON "slave" ("host", "port")')
        conn.execute(
            "INSERT INTO slave VALUES (1, '127.0.0.1', ?, 1, '[\"MyPipeline.Run\"]', "
            "'2026-01-01', '2026-01-01')",
            (slave.port,),
        )
    master = fleet.master(db=db)
    assert query(db, "PRAGMA user_version") == [(LATEST,)]
    assert query(db, "SELECT id, host, port FROM slave") == [(1, "127.0.0.1", slave.port)]
    channel = grpc.insecure_channel(master.address)
    reply = execution_pb2_grpc.ExecutionStub(channel).ExecuteJob(
        execution_pb2.JobParams(method="MyPipeline.Run", params={"param": "old-db"}), timeout=20
    )
    channel.close()
    assert "old-db" in reply.message


def test_database_from_a_newer_arko_is_refused(fleet: Fleet) -> None:
    """A schema version above ours is refused, not damaged."""
    db = fleet.database()
    if is_postgres_url(db):
        query(db, "CREATE TABLE arko_schema (version INTEGER NOT NULL)")
        query(db, "INSERT INTO arko_schema (version) VALUES (99)")
        stored = "SELECT version FROM arko_schema"
    else:
        stored = "PRAGMA user_version"
        query(db, "PRAGMA user_version = 99")
    out = _start_master_on(db)
    assert out.returncode == 2
    assert "newer than this arko" in out.stdout + out.stderr
    assert query(db, stored) == [(99,)]


# --- property-based: random jobs and registrations against one running master ---


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Daemon, Path | str]]:
    """One master with one slave, a few finished jobs, shared by the fuzz tests."""
    workdir = tmp_path_factory.mktemp("fuzz")
    with Fleet(workdir).running() as fleet:
        # Hundreds of registrations from this one host: the rate limit would
        # answer them RESOURCE_EXHAUSTED before their validation is reached.
        master = fleet.master(
            "--ping_timeout", "0.5", "--max_param_bytes", "4096", "--register_rate_limit", "0"
        )
        fleet.slave(master, "--run_delay", "0")
        with grpc.insecure_channel(master.address) as channel:
            stub = execution_pb2_grpc.ExecutionStub(channel)
            for i in range(3):
                stub.ExecuteJob(
                    execution_pb2.JobParams(method="MyPipeline.DryRun", params={"param": str(i)}),
                    timeout=10,
                )
        db = fleet.database()
        wait_until(
            lambda: query(db, "SELECT count(*) FROM job WHERE state = 'succeeded'") == [(3,)],
            timeout=10,
            what="the seed jobs to be recorded",
        )
        yield master, db


def _snapshot(db: Path | str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    slaves = query(db, "SELECT id, host, port FROM slave ORDER BY id")
    jobs = query(
        db, "SELECT id, method, state, result FROM job WHERE state = 'succeeded' ORDER BY id"
    )
    return slaves, jobs


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.one_of(
        st.text(max_size=80),
        st.sampled_from(["MyPipeline.DryRun", "MyPipeline/Rollback", "/MyPipeline/Run"]),
    ),
    params=st.dictionaries(st.text(max_size=20), st.text(max_size=300), max_size=8),
)
def test_random_jobs_get_proper_statuses(
    fuzz_target: tuple[Daemon, Path | str], method: str, params: dict[str, str]
) -> None:
    """Any JobParams gets OK or a meaningful error code, and stored data stays intact."""
    master, db = fuzz_target
    before = _snapshot(db)
    params = {k: v for k, v in params.items() if k != "param"} | (
        {"param": params["param"]} if "param" in params else {}
    )
    with grpc.insecure_channel(master.address) as channel:
        stub = execution_pb2_grpc.ExecutionStub(channel)
        try:
            stub.ExecuteJob(execution_pb2.JobParams(method=method, params=params), timeout=10)
        except grpc.RpcError as err:
            assert err.code() in PROPER_JOB_CODES, (err.code(), err.details())
            assert err.details()
    assert master.alive()
    after = _snapshot(db)
    assert after[0] == before[0]
    assert set(before[1]) <= set(after[1])


# The oracle is built into the hosts themselves, never asked of the validator
# under test. Only loopback names may ever be dialled (a valid random hostname
# would be looked up in DNS), so the valid hosts are these few, and every
# random host is invalid by construction.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "[::1]", "localhost", " 127.0.0.1 ", "LOCALHOST")
# No IP address or hostname holds one of these. '%' (an IPv6 zone may hold
# anything after it) and whitespace (trimmed at the ends) are left out.
FORBIDDEN = "!\"#$&'()*+,/;<=>?@\\^_`{|}~é\x00"
_no_zone = st.text(max_size=100).map(lambda t: t.replace("%", ""))
_invalid_hosts = st.one_of(
    st.builds(lambda a, c, b: a + c + b, _no_zone, st.sampled_from(FORBIDDEN), _no_zone),
    st.sampled_from(
        [
            " ",
            "[]",
            "a..b",
            "-lead.example",
            "trail-.example",
            "1.2.3.999",
            "a" * 64 + ".example",
            ".".join(["a" * 63] * 4) + ".com",
        ]
    ),
)
_hosts = st.one_of(_invalid_hosts, st.sampled_from(LOOPBACK_HOSTS))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(host=_hosts, port=st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_random_registrations_get_proper_statuses(
    fuzz_target: tuple[Daemon, Path | str], host: str, port: int
) -> None:
    """Any SlaveConfig is stored (valid) or refused with INVALID_ARGUMENT; nothing is lost."""
    master, db = fuzz_target
    before = _snapshot(db)
    valid = host in LOOPBACK_HOSTS and 1 <= port <= 65535
    with grpc.insecure_channel(master.address) as channel:
        stub = register_pb2_grpc.RegisterStub(channel)
        try:
            reply = stub.RegisterNewSlave(
                register_pb2.SlaveConfig(host=host, port=port), timeout=10
            )
        except grpc.RpcError as err:
            assert not valid, (host, port, err.details())
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            assert valid and reply.message == "done"
    assert master.alive()
    after = _snapshot(db)
    assert after[0][: len(before[0])] == before[0]
    assert set(before[1]) <= set(after[1])
