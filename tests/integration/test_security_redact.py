"""Issue 22, item 1: secrets that slipped past redaction, through the real daemons.

A password holding a quote, a backslash, a control or a non-ASCII character,
given as a parameter or inside a map field given as JSON, is echoed by the
slave in its output, its result and its error. No spelling of it may reach
Jobs/Get, Watch, the HTTP API, the database file, the journal, the master's
log or ``arko job ID --grpcurl``.
"""

from __future__ import annotations

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
from arko.v1 import jobs_pb2, jobs_pb2_grpc

ARKO = str(Path(sys.executable).parent / "arko")
# Unique enough never to be met by chance in a log or a file.
SECRETS = ['pa"ss-7d1e', "pässwört-7d1e", "pa\x01ss\\-7d1e"]


def _spellings(secret: str) -> set[str]:
    """The secret as a rendering may spell it: as is, JSON-escaped either way, repr'd."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
    }


def _assert_hidden(where: str, data: str | bytes) -> None:
    for secret in SECRETS:
        for spelling in _spellings(secret):
            found = spelling.encode() in data if isinstance(data, bytes) else spelling in data
            assert not found, f"{spelling!r} in {where}"


def _events(stub: jobs_pb2_grpc.JobsStub, request: jobs_pb2.RunRequest) -> list[jobs_pb2.JobEvent]:
    """Jobs/Run's events to the end; the stream's error, if any, is the job's."""
    events: list[jobs_pb2.JobEvent] = []
    try:
        events.extend(stub.Run(request, timeout=30))
    except grpc.RpcError as exc:
        assert exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE)
    return events


def _run_jobs(master: Daemon) -> list[str]:
    """For each secret: a password echoed, a JSON map echoed, and an error echoing it."""
    ids = []
    with grpc.insecure_channel(master.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        for secret in SECRETS:
            creds = json.dumps({"user": "ci", "password": secret})
            for method, params in (
                ("MyPipeline.Run", {"param": "visible", "password": secret}),
                ("arko.testing.v1.Toolbox.Echo", {"name": "visible", "labels": creds}),
                (
                    "arko.testing.v1.Toolbox.Fail",
                    {"code": "FAILED_PRECONDITION", "message": "boom", "labels": creds},
                ),
            ):
                events = _events(stub, jobs_pb2.RunRequest(method=method, params=params))
                ids.append(events[0].job_id)
        # Last, as it takes the toolbox slave down: its error text becomes the
        # reason the master gives for that, in its log and its database.
        every = json.dumps(dict(zip(("password", "pwd", "cookie"), SECRETS, strict=True)))
        params = {"code": "UNAVAILABLE", "message": "gone", "labels": every}
        request = jobs_pb2.RunRequest(method="arko.testing.v1.Toolbox.Fail", params=params)
        ids.append(_events(stub, request)[0].job_id)
    master.wait_for_event("slave_down")
    return ids


@pytest.fixture
def master(fleet: Fleet, toolbox_env: dict[str, str]) -> Iterator[tuple[Daemon, str]]:
    """A master with HTTP and a journal flushed only on demand; a pipeline and a toolbox slave."""
    port = free_port()
    master = fleet.master(
        "--http_port", str(port), "--log_level", "debug", "--job_flush_interval", "3600"
    )
    master.wait_for_event("http_started")
    fleet.slave(master, "--run_delay", "0")
    fleet.slave(master, "--service", "toolbox_plugin:plugin", env=toolbox_env)
    yield master, f"http://127.0.0.1:{port}"


def test_secrets_are_hidden_in_every_rendering(fleet: Fleet, master: tuple[Daemon, str]) -> None:
    """Records, events, HTTP, journal, database, log and the grpcurl export hold no spelling."""
    daemon, url = master
    ids = _run_jobs(daemon)
    journal = fleet.journal(daemon)
    _assert_hidden("the journal", b"".join(p.read_bytes() for p in journal.glob("*")))

    with grpc.insecure_channel(daemon.address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        listed = stub.List(jobs_pb2.ListJobsRequest(page_size=100), timeout=30)
        assert {job.id for job in listed.jobs} == set(ids)
        _assert_hidden("Jobs/List", text_format.MessageToString(listed))
        for job_id in ids:
            job = stub.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=30)
            assert job.result or job.error
            _assert_hidden("Jobs/Get", text_format.MessageToString(job, as_utf8=True))
            _assert_hidden("Jobs/Get as JSON", json_format.MessageToJson(job))
            watched = list(stub.Watch(jobs_pb2.WatchRequest(job_id=job_id), timeout=30))
            for event in watched:
                _assert_hidden("Jobs/Watch", text_format.MessageToString(event, as_utf8=True))
    echoed = stub_get_params(daemon, ids[1])
    assert json.loads(echoed["labels"]) == {"user": "ci", "password": "***"}

    for job_id in ids:
        _assert_hidden("HTTP job", requests.get(f"{url}/api/v1/jobs/{job_id}", timeout=30).content)
        events = requests.get(f"{url}/api/v1/jobs/{job_id}/events", timeout=30)
        _assert_hidden("HTTP events", events.content)
        export = subprocess.run(
            [ARKO, "job", job_id, "--grpcurl"],
            capture_output=True,
            env={**_clean_env(), "ARKO_MASTER": daemon.address},
            timeout=60,
            check=True,
        )
        _assert_hidden("arko job --grpcurl", export.stdout)

    failed = [e for e in daemon.events("job_finished") if e.get("code") != "OK"]
    assert len(failed) == len(SECRETS) + 1
    assert all("boom" in e["reason"] or "gone" in e["reason"] for e in failed)
    assert "gone" in daemon.events("slave_down")[0]["reason"]
    assert daemon.stop() == 0
    _assert_hidden("the master's log", Path(daemon.log_path).read_bytes())
    if is_postgres_url(fleet.database()):
        tables = fleet.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {"job", "job_event", "slave"} <= {name for (name,) in tables}
        for (name,) in tables:
            rows = fleet.query(f'SELECT * FROM "{name}"')
            _assert_hidden(f"table {name}", "\n".join(map(str, rows)) + repr(rows))
    else:
        db = Path(fleet.database())
        files = [p for p in db.parent.glob(f"{db.name}*") if p.is_file()]
        assert files
        for path in files:
            _assert_hidden(path.name, path.read_bytes())


def stub_get_params(daemon: Daemon, job_id: str) -> dict[str, str]:
    """The stored string parameters of one job."""
    with grpc.insecure_channel(daemon.address) as channel:
        job = jobs_pb2_grpc.JobsStub(channel).Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=30)
    return dict(job.params)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ARKO_")}
