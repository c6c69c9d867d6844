"""Secrets the master keeps (issue 24 item 4), through the real daemons.

A secret set with ``arko secrets set`` (value on stdin) reaches the slave's
method as ``${secret:NAME}`` is replaced on the way, and no spelling of it
reaches anything else: Jobs/Get, Watch, the SSE stream, ``--grpcurl``, the
journal, the database or the master's log. The value holds a quote and a
backslash, so its JSON-escaped spelling differs from it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.protobuf import json_format, text_format

from arko.testing import Daemon, Fleet, free_port, is_postgres_url
from arko.v1 import jobs_pb2, jobs_pb2_grpc, secrets_pb2, secrets_pb2_grpc

ARKO = str(Path(sys.executable).parent / "arko")
ECHO = "arko.testing.v1.Toolbox.Echo"
RECORDING = ("--service", "recording_plugin:plugin")
# Unique enough never to be met by chance in a log or a file.
VALUE = 'dep"loy\\key-5c3a'
SPELLINGS = {VALUE, json.dumps(VALUE)[1:-1], repr(VALUE)[1:-1]}
TOKEN = "secrets-client-token"


def _assert_hidden(where: str, data: str | bytes) -> None:
    for spelling in SPELLINGS:
        found = spelling.encode() in data if isinstance(data, bytes) else spelling in data
        assert not found, f"{spelling!r} in {where}"


def make_key(folder: Path, mode: int = 0o600) -> Path:
    """A key file as the manual says to make one."""
    path = folder / "arko-secrets.key"
    path.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    path.chmod(mode)
    return path


def arko(
    master: Daemon, *args: str, stdin: str = "", token: str = ""
) -> subprocess.CompletedProcess[str]:
    """The installed ``arko`` script against ``master``, ``stdin`` piped in (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKO_")}
    env["ARKO_MASTER"] = master.address
    if token:
        env["ARKO_CLIENT_TOKEN"] = token
    return subprocess.run(
        [ARKO, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
    )


def run_job(master: Daemon, **args: object) -> list[jobs_pb2.JobEvent]:
    """Echo with these typed arguments, to its end (raises the job's error)."""
    request = jobs_pb2.RunRequest(method=ECHO)
    request.args.update(args)
    with grpc.insecure_channel(master.address) as channel:
        return list(jobs_pb2_grpc.JobsStub(channel).Run(request, timeout=60))


def refused(master: Daemon, **args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        run_job(master, **args)
    return caught.value


def recorded(path: Path) -> list[dict[str, object]]:
    """What the slave's Echo was given, one request per call."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "echo-requests.jsonl"


@pytest.fixture
def vaulted(
    fleet: Fleet, toolbox_env: dict[str, str], record: Path, tmp_path: Path
) -> Iterator[tuple[Daemon, str]]:
    """A master with a key file, HTTP and a journal flushed only on demand; a recording slave."""
    port = free_port()
    master = fleet.master(
        "--secrets_key_file",
        str(make_key(tmp_path)),
        "--http_port",
        str(port),
        "--job_flush_interval",
        "3600",
    )
    master.wait_for_event("http_started")
    fleet.slave(master, *RECORDING, env={**toolbox_env, "ARKO_TEST_RECORD": str(record)})
    yield master, f"http://127.0.0.1:{port}"


def test_a_secret_reaches_the_slave_and_nothing_else(
    fleet: Fleet, vaulted: tuple[Daemon, str], record: Path, grpcurl: str
) -> None:
    """Set by the CLI from stdin, given to Echo, shown as *** or as its reference elsewhere."""
    master, url = vaulted
    done = arko(
        master, "secrets", "set", "DEPLOY_KEY", "--methods", "*.Toolbox.Echo", stdin=VALUE + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert "DEPLOY_KEY" in done.stdout
    _assert_hidden("arko secrets set", done.stdout + done.stderr)

    events = run_job(master, name="${secret:DEPLOY_KEY}", count=2)
    (sent,) = recorded(record)
    assert sent["name"] == VALUE  # the slave's method got the value itself
    job_id = events[0].job_id
    (output,) = [e.output for e in events if e.kind == jobs_pb2.JobEvent.OUTPUT]
    assert json.loads(output)["summary"].startswith("name=*** count=2")
    assert events[-1].job.state == jobs_pb2.SUCCEEDED
    for event in events:
        _assert_hidden("Jobs/Run", text_format.MessageToString(event, as_utf8=True))

    with grpc.insecure_channel(master.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        job = stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=30)
        assert json_format.MessageToDict(job.args)["name"] == "${secret:DEPLOY_KEY}"
        assert "***" in job.result
        _assert_hidden("Jobs/Get", text_format.MessageToString(job, as_utf8=True))
        _assert_hidden("Jobs/Get as JSON", json_format.MessageToJson(job))
        for event in stub.Watch(jobs_pb2.WatchRequest(job_id=job_id), timeout=30):
            _assert_hidden("Jobs/Watch", text_format.MessageToString(event, as_utf8=True))
    sse = requests.get(f"{url}/api/v1/jobs/{job_id}/events", timeout=30)
    assert sse.status_code == 200 and b"***" in sse.content
    _assert_hidden("the SSE stream", sse.content)
    export = arko(master, "job", job_id, "--grpcurl")
    assert export.returncode == 0, export.stderr
    assert "${secret:DEPLOY_KEY}" in export.stdout
    _assert_hidden("arko job --grpcurl", export.stdout)

    # grpcurl itself lists it: name and globs, never the value.
    listed = subprocess.run(
        [grpcurl, "-plaintext", master.address, "arko.v1.Secrets/List"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (secret,) = json.loads(listed.stdout)["secrets"]
    assert (secret["name"], secret["methods"]) == ("DEPLOY_KEY", ["*.Toolbox.Echo"])
    _assert_hidden("Secrets/List", listed.stdout)
    http = requests.get(f"{url}/api/v1/secrets", timeout=30).json()
    assert [(s["name"], s["methods"]) for s in http["secrets"]] == [
        ("DEPLOY_KEY", ["*.Toolbox.Echo"])
    ]
    assert {"createdAt", "updatedAt"} <= set(http["secrets"][0])
    table = arko(master, "secrets", "list")
    assert table.stdout.splitlines()[1].split("\t")[:2] == ["DEPLOY_KEY", "*.Toolbox.Echo"]

    _assert_hidden("the journal", b"".join(p.read_bytes() for p in fleet.journal(master).glob("*")))
    assert master.events("secret_set")[0]["name"] == "DEPLOY_KEY"
    assert master.stop() == 0  # the journal reaches the database
    _assert_hidden("the master's log", Path(master.log_path).read_bytes())
    _assert_database_hidden(fleet)


def _assert_database_hidden(fleet: Fleet) -> None:
    """No spelling of the value in any table (PostgreSQL) or any file of the database (SQLite)."""
    if is_postgres_url(fleet.database()):
        tables = fleet.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {"job", "job_event", "secret"} <= {name for (name,) in tables}
        for (name,) in tables:
            rows = fleet.query(f'SELECT * FROM "{name}"')
            _assert_hidden(f"table {name}", "\n".join(map(str, rows)) + repr(rows))
        (sealed,) = fleet.query("SELECT sealed FROM secret")
        assert sealed[0]
    else:
        db = Path(fleet.database())
        files = [p for p in db.parent.glob(f"{db.name}*") if p.is_file()]
        assert files
        for path in files:
            _assert_hidden(path.name, path.read_bytes())
        assert fleet.query("SELECT name FROM secret") == [("DEPLOY_KEY",)]


def test_a_method_outside_the_globs_is_refused_before_the_slave(
    vaulted: tuple[Daemon, str], record: Path
) -> None:
    """PERMISSION_DENIED naming secret and method, on record; the slave's Echo never ran.
    An unknown secret is FAILED_PRECONDITION naming it."""
    master, _ = vaulted
    done = arko(master, "secrets", "set", "PROD_KEY", "--methods", "Deploy.*", stdin=VALUE)
    assert done.returncode == 0, done.stderr
    error = refused(master, name="${secret:PROD_KEY}")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "PROD_KEY" in (error.details() or "") and ECHO in (error.details() or "")
    _assert_hidden("the refusal", error.details() or "")
    unknown = refused(master, name="${secret:NOPE}")
    assert unknown.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "secret NOPE" in (unknown.details() or "")
    # A value that does not fit its field: the parse error is the caller's, masked.
    assert arko(master, "secrets", "set", "NUM", stdin=VALUE).returncode == 0
    unfit = refused(master, count="${secret:NUM}")
    assert unfit.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "count" in (unfit.details() or "") and "***" in (unfit.details() or "")
    _assert_hidden("the parse error", unfit.details() or "")
    assert recorded(record) == []
    with grpc.insecure_channel(master.address) as channel:
        listed = jobs_pb2_grpc.JobsStub(channel).List(jobs_pb2.ListJobsRequest(), timeout=30)
    codes = sorted(j.code for j in listed.jobs)
    assert codes == ["FAILED_PRECONDITION", "INVALID_ARGUMENT", "PERMISSION_DENIED"]
    assert all(not j.slave for j in listed.jobs)


def test_the_cli_refuses_an_empty_value_and_a_missing_secret(vaulted: tuple[Daemon, str]) -> None:
    """Empty stdin: usage error, nothing set. rm of a missing secret: exit 4. rm, then gone."""
    master, _ = vaulted
    empty = arko(master, "secrets", "set", "EMPTY", stdin="")
    assert empty.returncode == 2 and "no value for secret EMPTY" in empty.stderr
    assert arko(master, "secrets", "rm", "EMPTY").returncode == 4
    assert arko(master, "secrets", "set", "GONE", stdin="value").returncode == 0
    removed = arko(master, "secrets", "rm", "GONE")
    assert removed.returncode == 0, removed.stderr
    listed = json.loads(arko(master, "secrets", "list", "--json").stdout)
    assert listed == {"secrets": []}
    assert master.events("secret_deleted")[0]["name"] == "GONE"


def test_without_a_key_the_master_keeps_no_secrets(
    fleet: Fleet, toolbox_env: dict[str, str], record: Path, grpcurl: str
) -> None:
    """Secrets answers FAILED_PRECONDITION saying how to set a key; HTTP says 412; a job
    with a reference fails the same way, before the slave."""
    port = free_port()
    master = fleet.master("--http_port", str(port))
    master.wait_for_event("http_started")
    fleet.slave(master, *RECORDING, env={**toolbox_env, "ARKO_TEST_RECORD": str(record)})
    listed = subprocess.run(
        [grpcurl, "-plaintext", master.address, "arko.v1.Secrets/List"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode != 0
    assert "FailedPrecondition" in listed.stderr and "--secrets_key_file" in listed.stderr
    done = arko(master, "secrets", "set", "X", stdin="value")
    assert done.returncode == 6 and "head -c 32 /dev/urandom" in done.stderr
    http = requests.get(f"http://127.0.0.1:{port}/api/v1/secrets", timeout=30)
    assert http.status_code == 412
    assert http.json()["error"]["code"] == "FAILED_PRECONDITION"
    error = refused(master, name="${secret:X}")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert run_job(master, name="plain")[-1].job.state == jobs_pb2.SUCCEEDED
    assert [r["name"] for r in recorded(record)] == ["plain"]


def test_the_client_token_guards_secrets(fleet: Fleet, tmp_path: Path) -> None:
    """Without the token: UNAUTHENTICATED over gRPC, 401 over HTTP; with it, listed."""
    port = free_port()
    master = fleet.master(
        "--secrets_key_file",
        str(make_key(tmp_path)),
        "--http_port",
        str(port),
        env={"ARKO_MASTER_CLIENT_TOKEN": TOKEN},
    )
    master.wait_for_event("http_started")
    with grpc.insecure_channel(master.address) as channel:
        stub = secrets_pb2_grpc.SecretsStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.List(secrets_pb2.ListSecretsRequest(), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    url = f"http://127.0.0.1:{port}/api/v1/secrets"
    assert requests.get(url, timeout=30).status_code == 401
    assert arko(master, "secrets", "set", "T", stdin="value", token=TOKEN).returncode == 0
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert [s["name"] for s in requests.get(url, headers=auth, timeout=30).json()["secrets"]] == [
        "T"
    ]


@pytest.mark.one_pass("checks the key file before any database is opened")
@pytest.mark.parametrize(
    ("mode", "content", "words"),
    [
        (0o644, None, "group and others must have no access"),
        (0o600, b"c2hvcnQ=\n", "must hold 32 random bytes in base64"),
    ],
    ids=["readable-by-others", "short"],
)
def test_a_bad_key_file_stops_the_master_at_start(
    fleet: Fleet, tmp_path: Path, mode: int, content: bytes | None, words: str
) -> None:
    """Exit 2 with one line naming the file and what is wrong with it."""
    key = make_key(tmp_path, mode)
    if content is not None:
        key.write_bytes(content)
    master = fleet.master("--secrets_key_file", str(key), wait=False)
    assert master.proc is not None
    assert master.proc.wait(30) == 2
    (failed,) = master.events("startup_failed")
    assert words in failed["reason"] and str(key) in failed["reason"]


@pytest.mark.one_pass("its masters are on PostgreSQL in the SQLite pass already")
def test_masters_on_one_postgresql_database_share_secrets(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str], record: Path, tmp_path: Path
) -> None:
    """Set through master A, used by a job through master B; deleted through B, gone on A."""
    key = make_key(tmp_path)
    env = {"ARKO_MASTER_JOIN_TOKEN": "secrets-join-token"}
    masters = [
        fleet.master("--secrets_key_file", str(key), "--name", name, db=postgres_url, env=env)
        for name in ("a", "b")
    ]
    slave_env = {
        **toolbox_env,
        "ARKO_TEST_RECORD": str(record),
        "ARKO_SLAVE_JOIN_TOKEN": "secrets-join-token",
    }
    fleet.slave(masters, *RECORDING, env=slave_env)
    first, second = masters
    assert arko(first, "secrets", "set", "SHARED", stdin=VALUE).returncode == 0
    events = run_job(second, name="${secret:SHARED}")
    assert events[-1].job.state == jobs_pb2.SUCCEEDED
    assert [r["name"] for r in recorded(record)] == [VALUE]
    assert [e["job_id"] for e in second.events("job_finished")] == [events[0].job_id]
    assert arko(second, "secrets", "rm", "SHARED").returncode == 0
    gone = refused(first, name="${secret:SHARED}")
    assert gone.code() == grpc.StatusCode.FAILED_PRECONDITION
    for master in masters:
        master.stop()
        _assert_hidden(f"master {master.address}'s log", Path(master.log_path).read_bytes())
