"""The operator's surfaces on real daemons: the arko CLI, arko.v1.Admin, backups, metrics."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shlex
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import peewee
import pytest
from prometheus_client.parser import text_string_to_metric_families

from arko.master.store.models import JobModel, SlaveModel
from arko.testing import Daemon, Fleet, free_port, is_postgres_url, wait_until
from arko.v1 import admin_pb2, admin_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from tests.pki import CertificateAuthority

ARKO = str(Path(sys.executable).parent / "arko")
STREAM = "MyPipelineLogs.Stream"
TOKEN = "s3cret-client-token"


def arko(
    master: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``arko`` script against ``master`` (not a terminal)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARKO_")}
    environ.update({"ARKO_MASTER": master, **(env or {})})
    return subprocess.run(
        [ARKO, *args], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Daemon]]:
    """One master and one slave for the tests that only read or add jobs."""
    with Fleet(tmp_path_factory.mktemp("operator")).running() as fleet:
        master = fleet.master()
        yield master, fleet.slave(master, "--run_delay", "0.1")


def _ctrl_c_as_at_a_terminal() -> None:
    """In a child about to run ``arko``: SIGINT at its default, as a shell starts programs.

    A runner started in the background of a script (``cmd &``) ignores SIGINT,
    and an ignored signal stays ignored across exec: the Ctrl-C tests would
    then test the runner, not arko.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _json(done: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert done.returncode == 0, done.stderr
    value: dict = json.loads(done.stdout)  # type: ignore[type-arg]
    return value


def test_slaves_methods_and_describe_show_the_fleet(pair: tuple[Daemon, Daemon]) -> None:
    """Tables name the slave and its methods within 80 columns; --json carries the same."""
    master, slave = pair
    table = arko(master.address, "slaves")
    assert table.returncode == 0, table.stderr
    assert slave.address in table.stdout and "LIVE" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    listed = _json(arko(master.address, "slaves", "--json"))["slaves"]
    assert [s["address"] for s in listed] == [slave.address]
    assert listed[0]["status"] == "LIVE" and STREAM in listed[0]["methods"]
    assert listed[0]["last_seen"]

    methods = arko(master.address, "methods")
    assert methods.returncode == 0 and "MyPipeline.Run" in methods.stdout
    names = [m["method"] for m in _json(arko(master.address, "methods", "--json"))["methods"]]
    assert names == sorted(["MyPipeline.Run", "MyPipeline.DryRun", "MyPipeline.Rollback", STREAM])

    described = _json(arko(master.address, "describe", STREAM, "--json"))
    assert described["server_streaming"] is True
    fields = {f["name"]: f["type"] for f in described["messages"][0]["fields"]}
    assert fields == {"lines": "int32", "interval": "double", "prefix": "string"}
    secret = _json(arko(master.address, "describe", "MyPipeline.Run", "--json"))
    assert {f["name"]: f["secret"] for f in secret["messages"][0]["fields"]} == {
        "param": False,
        "password": True,
    }
    text = arko(master.address, "describe", STREAM)
    assert "lines" in text.stdout and "int32" in text.stdout and "server-streaming" in text.stdout


def test_run_exit_codes_follow_the_outcome(pair: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    """0 succeeded, 1 failed, 2 usage, 3 unreachable, 4 not found; typed values checked first."""
    master, _ = pair
    ok = arko(master.address, "run", "MyPipeline.DryRun", "param=x")
    assert (ok.returncode, ok.stdout.strip()) == (0, '{"message": "job execution done"}')
    failed = arko(master.address, "run", STREAM, "lines=-1")
    assert failed.returncode == 1
    assert "failed" in failed.stderr and "INVALID_ARGUMENT" in failed.stderr
    for bad in (["lines=ten"], ["lynes=3"], ["lines"], ["lines=1", "lines=2"]):
        usage = arko(master.address, "run", STREAM, *bad)
        assert usage.returncode == 2, (bad, usage.stderr)
        assert usage.stderr.startswith("arko: ") and "Traceback" not in usage.stderr
    assert "did you mean lines" in arko(master.address, "run", STREAM, "lynes=3").stderr
    assert arko(master.address, "run", "Nope.Run").returncode == 4
    assert arko(master.address, "job", "0" * 32).returncode == 4
    assert arko(master.address, "logs", "0" * 32).returncode == 4
    assert arko(master.address, "job", "not-an-id").returncode == 2
    assert arko(master.address, "jobs", "--state", "nonsense").returncode == 2
    assert arko(master.address, "frobnicate").returncode == 2
    unreachable = arko(f"127.0.0.1:{free_port()}", "slaves")
    assert unreachable.returncode == 3 and "cannot reach the master" in unreachable.stderr
    assert "Exit codes" in arko(master.address, "--help").stdout


def test_run_prints_stream_lines_as_they_come(pair: tuple[Daemon, Daemon]) -> None:
    """The first line is on the pipe while the job is still running on the slave."""
    master, _ = pair
    environ = {**os.environ, "ARKO_MASTER": master.address}
    # 3 s between lines: the job must still run when `arko jobs` below has
    # started, which took more than the 1.5 s left at 0.5 s on a busy machine.
    proc = subprocess.Popen(
        [ARKO, "run", STREAM, "lines=4", "interval=3", "prefix=live "],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert json.loads(first) == {"number": 1, "text": "live line 1 of 4"}
        running = _json(arko(master.address, "jobs", "--json", "--state", "running"))["jobs"]
        assert [j["method"] for j in running] == [STREAM]
        assert proc.poll() is None
        rest = proc.stdout.read()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [json.loads(line)["number"] for line in rest.splitlines()] == [2, 3, 4]


def test_ctrl_c_cancels_the_job_when_piped(pair: tuple[Daemon, Daemon]) -> None:
    """SIGINT to a piped ``arko run`` cancels the job without asking: exit 5, CANCELLED."""
    master, _ = pair
    environ = {**os.environ, "ARKO_MASTER": master.address}
    proc = subprocess.Popen(
        [ARKO, "run", STREAM, "lines=1000", "interval=0.1", "prefix=ctrlc "],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        text=True,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )
    try:
        assert proc.stdout is not None
        assert "ctrlc line 1" in proc.stdout.readline()
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
    jobs = _json(arko(master.address, "jobs", "--json", "--method", STREAM))["jobs"]
    mine = [j for j in jobs if j["state"] == "CANCELLED"]
    assert mine and "Ctrl-C" in mine[0]["cancelled_by"]


def test_detach_logs_job_cancel_and_grpcurl(pair: tuple[Daemon, Daemon], grpcurl: str) -> None:
    """--detach prints the id; job/logs read it back; --grpcurl reruns it with the secret filled."""
    master, _ = pair
    detached = arko(
        master.address, "run", "--detach", "MyPipeline.Run", "param=a", "password=hunter2"
    )
    assert detached.returncode == 0
    job_id = detached.stdout.strip()
    assert len(job_id) == 32
    logs = arko(master.address, "logs", "-f", job_id)
    assert logs.returncode == 0
    assert json.loads(logs.stdout) == {"message": "job execution done with: a ***"}
    shown = arko(master.address, "job", job_id)
    assert "SUCCEEDED" in shown.stdout and "password=***" in shown.stdout
    assert "hunter2" not in shown.stdout
    assert _json(arko(master.address, "job", job_id, "--json"))["state"] == "SUCCEEDED"
    again = arko(master.address, "job", job_id, "--grpcurl")
    assert again.returncode == 0 and "hunter2" not in again.stdout and "<PASSWORD>" in again.stdout
    argv = shlex.split(again.stdout.replace("<PASSWORD>", "pw2"))
    assert argv[0] == "grpcurl"
    rerun = subprocess.run([grpcurl, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert "job execution done with: a ***" in rerun.stdout and "SUCCEEDED" in rerun.stdout

    long = arko(master.address, "run", "-d", STREAM, "lines=1000", "interval=0.1")
    long_id = long.stdout.strip()
    reader = subprocess.Popen(
        [ARKO, "logs", "-f", long_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "ARKO_MASTER": master.address},
        text=True,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )
    try:
        assert reader.stdout is not None and "line 1 of 1000" in reader.stdout.readline()
        os.kill(reader.pid, signal.SIGINT)
        # Ctrl-C on logs -f stops reading, not the job.
        assert reader.wait(30) == 0, reader.stderr.read() if reader.stderr else ""
    finally:
        if reader.poll() is None:
            reader.kill()
    assert _json(arko(master.address, "job", long_id, "--json"))["state"] == "RUNNING"
    cancelled = arko(master.address, "cancel", long_id)
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, f"job {long_id} cancelled")
    assert arko(master.address, "logs", "-f", long_id).returncode == 0
    table = arko(master.address, "jobs")
    assert long_id in table.stdout and job_id in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())


@pytest.mark.sqlite_only("Admin/Backup copies the SQLite file (PostgreSQL refuses it: pg_dump)")
def test_backup_taken_while_jobs_run_holds_every_slave_and_job(
    fleet: Fleet, tmp_path: Path
) -> None:
    """The copy opens with peewee, passes an integrity check and holds all accepted jobs.

    Records gather for an hour before a database write here, so only the
    backup's own flush can put them in the copy.
    """
    master = fleet.master("--job_flush_interval", "3600")
    slaves = [fleet.slave(master) for _ in range(2)]
    started = [
        arko(master.address, "run", "-d", STREAM, "lines=500", "interval=0.01").stdout.strip()
        for _ in range(6)
    ]
    assert all(len(j) == 32 for j in started)
    target = tmp_path / "copy.db"
    done = arko(master.address, "backup", str(target))
    assert done.returncode == 0, done.stderr
    assert f"to {target}" in done.stdout
    db = peewee.SqliteDatabase(str(target))
    with db.bind_ctx([SlaveModel, JobModel]):
        assert db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {f"{s.host}:{s.port}" for s in SlaveModel.select()}
        jobs = {j.id: j.state for j in JobModel.select()}
    db.close()
    assert stored == {s.address for s in slaves}
    assert set(started) <= set(jobs)
    assert "running" in {jobs[j] for j in started}, "no job was running when the copy was taken"
    assert not list(tmp_path.glob(".*partial"))
    master.stop()
    restored = fleet.master(db=target)
    history = _json(arko(restored.address, "jobs", "--json", "--limit", "1000"))["jobs"]
    assert set(started) <= {j["id"] for j in history}
    assert {j["state"] for j in history if j["id"] in started} <= {"SUCCEEDED", "INTERRUPTED"}
    known = _json(arko(restored.address, "slaves", "--json"))["slaves"]
    assert {s["address"] for s in known} == {s.address for s in slaves}


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_exactly_the_jobs_run(fleet: Fleet) -> None:
    """After 3 successes, 2 failures and 1 cancel, both daemons' counters say exactly that.

    Jobs of methods no slave offers count under one ``(unknown)`` label, so
    callers' typos cannot add series.
    """
    master_port, slave_port = free_port(), free_port()
    master = fleet.master("--metrics_port", str(master_port))
    fleet.slave(master, "--metrics_port", str(slave_port))
    for _ in range(3):
        assert arko(master.address, "run", "MyPipeline.DryRun").returncode == 0
    for _ in range(2):
        assert arko(master.address, "run", STREAM, "lines=-1").returncode == 1
    with grpc.insecure_channel(master.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        for name in ("Nope.Run", "Typo.Run", "not a method"):
            with pytest.raises(grpc.RpcError):
                list(stub.Run(jobs_pb2.RunRequest(method=name), timeout=10))
    long_id = arko(master.address, "run", "-d", STREAM, "lines=1000", "interval=0.1").stdout.strip()
    assert arko(master.address, "logs", long_id).returncode == 0
    assert arko(master.address, "cancel", long_id).returncode == 0

    def jobs(method: str, outcome: str) -> float:
        key = ("arko_jobs_total", (("method", method), ("outcome", outcome)))
        return _metrics(master_port).get(key, 0.0)

    assert jobs("MyPipeline.DryRun", "succeeded") == 3
    assert jobs(STREAM, "failed") == 2
    assert jobs(STREAM, "cancelled") == 1
    assert jobs("(unknown)", "failed") == 3
    assert {dict(k[1])["method"] for k in _metrics(master_port) if k[0] == "arko_jobs_total"} == {
        "MyPipeline.DryRun",
        STREAM,
        "(unknown)",
    }
    m = _metrics(master_port)
    assert m[("arko_slave_registrations_total", ())] == 1
    assert m[("arko_slaves", (("status", "live"),))] == 1
    assert m[("arko_job_duration_seconds_count", (("method", "MyPipeline.DryRun"),))] == 3
    assert m[("arko_job_queue_wait_seconds_count", (("method", STREAM),))] == 3
    assert m[("arko_stream_messages_total", ())] >= 3

    def slave_calls() -> dict[tuple[str, str], float]:
        found = _metrics(slave_port)
        return {
            (dict(k[1])["method"], dict(k[1])["outcome"]): v
            for k, v in found.items()
            if k[0] == "arko_slave_calls_total"
        }

    wait_until(lambda: (STREAM, "cancelled") in slave_calls(), 15, "the slave to count the cancel")
    assert slave_calls() == {
        ("MyPipeline.DryRun", "ok"): 3,
        (STREAM, "invalid_argument"): 2,
        (STREAM, "cancelled"): 1,
    }
    assert _metrics(slave_port)[("arko_slave_running_jobs", ())] == 0


def test_admin_needs_the_client_token(fleet: Fleet, grpcurl: str, tmp_path: Path) -> None:
    """With a client token set, Admin (and the CLI) are refused without it and served with it."""
    master = fleet.master(env={"ARKO_MASTER_CLIENT_TOKEN": TOKEN})
    refused = subprocess.run(
        [grpcurl, "-plaintext", master.address, "arko.v1.Admin/ListSlaves"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
    backup = subprocess.run(
        [grpcurl, "-plaintext", master.address, "arko.v1.Admin/Backup"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Unauthenticated" in backup.stderr and "data" not in backup.stdout
    denied = arko(master.address, "slaves")
    assert denied.returncode == 6 and "UNAUTHENTICATED" in denied.stderr
    assert arko(master.address, "slaves", env={"ARKO_CLIENT_TOKEN": TOKEN}).returncode == 0
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with_file = arko(
        master.address, "--client_token_file", str(token_file), "backup", str(tmp_path / "b.db")
    )
    if is_postgres_url(fleet.database()):  # past the token, refused for the database's kind
        assert "pg_dump" in with_file.stderr and "UNAUTHENTICATED" not in with_file.stderr
        assert with_file.returncode != 0
    else:
        assert with_file.returncode == 0, with_file.stderr
        sqlite3.connect(tmp_path / "b.db").execute("SELECT count(*) FROM job").fetchone()


def test_remove_slave_forgets_it_until_it_registers_again(fleet: Fleet) -> None:
    """RemoveSlave drops a slave from the list and the database; an unknown one is NOT_FOUND."""
    master = fleet.master()
    slave = fleet.slave(master)
    with grpc.insecure_channel(master.address) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        admin.RemoveSlave(admin_pb2.RemoveSlaveRequest(address=slave.address), timeout=10)
        assert list(admin.ListSlaves(admin_pb2.ListSlavesRequest(), timeout=10).slaves) == []
        with pytest.raises(grpc.RpcError) as caught:
            admin.RemoveSlave(admin_pb2.RemoveSlaveRequest(address=slave.address), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        jobs = jobs_pb2_grpc.JobsStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(jobs.Run(jobs_pb2.RunRequest(method="MyPipeline.DryRun"), timeout=10))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert arko(master.address, "slaves", "--json").stdout.count(slave.address) == 0


def test_cli_over_mutual_tls(fleet: Fleet, tmp_path: Path) -> None:
    """With the daemons' TLS flags the CLI lists slaves and runs a job; without, it is refused."""
    ca = CertificateAuthority(tmp_path)
    master_cert, slave_cert = ca.issue("arko-master"), ca.issue("slave-1")
    client = ca.issue("ci-client", client=True)
    client_creds = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_path.read_bytes(),
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )
    master = fleet.master(*ca.daemon_flags(master_cert), credentials=client_creds)
    slave = fleet.slave(master, *ca.daemon_flags(slave_cert), credentials=client_creds)
    flags = ["--tls", "--ca_file", str(ca.cert_path)]
    identity = ["--cert_file", str(client.cert), "--key_file", str(client.key)]
    listed = _json(arko(master.address, *flags, *identity, "slaves", "--json"))["slaves"]
    assert [s["address"] for s in listed] == [slave.address]
    ran = arko(master.address, *flags, *identity, "run", "MyPipeline.DryRun")
    assert ran.returncode == 0, ran.stderr
    assert arko(master.address, *flags, "slaves").returncode == 3  # no client certificate
    assert arko(master.address, "slaves").returncode == 3  # plaintext to a TLS port
    assert arko(master.address, "--ca_file", str(ca.cert_path), "slaves").returncode == 2


def _read_until(fd: int, needle: bytes, what: str) -> bytes:
    """Read a pty until ``needle`` shows (bounded by wait_until's timeout)."""
    seen = b""

    def found() -> bool:
        nonlocal seen
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):
                seen += os.read(fd, 65536)
        return needle in seen

    wait_until(found, 30, what)
    return seen


def test_on_a_terminal_run_shows_a_spinner_and_ctrl_c_asks_first(
    pair: tuple[Daemon, Daemon],
) -> None:
    """A terminal gets the elapsed-time spinner; Ctrl-C asks, and 'y' cancels (exit 5)."""
    master, _ = pair
    pid, fd = pty.fork()
    if pid == 0:  # the child: arko with the pty as its terminal
        os.environ["ARKO_MASTER"] = master.address
        _ctrl_c_as_at_a_terminal()
        os.execv(ARKO, [ARKO, "run", STREAM, "lines=1000", "interval=0.1", "prefix=tty "])
    try:
        shown = _read_until(fd, b"tty line 2 of 1000", "the first lines on the terminal")
        assert b"0:00:0" in shown  # the elapsed-time column of the spinner
        os.kill(pid, signal.SIGINT)
        _read_until(fd, b"Cancel job", "the question before cancelling")
        os.write(fd, b"y\n")
        end = _read_until(fd, b"cancelled", "the job to end cancelled")
        assert b"Ctrl-C in arko run" in end
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
