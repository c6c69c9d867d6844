"""``arko run`` on real daemons: the job's deadline, its events, its record, its failure line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from arko.testing import Daemon, Fleet
from tests.integration.test_operator import arko

ECHO = "arko.testing.v1.Toolbox.Echo"
FAIL = "arko.testing.v1.Toolbox.Fail"


@pytest.fixture(scope="module")
def master(
    tmp_path_factory: pytest.TempPathFactory, toolbox_env: dict[str, str]
) -> Iterator[Daemon]:
    """A master, the example slave (MyPipeline.Run takes its default 5 s) and the toolbox."""
    with Fleet(tmp_path_factory.mktemp("cli_run")).running() as fleet:
        m = fleet.master()
        fleet.slave(m)
        fleet.slave(m, "--service", "toolbox_plugin:plugin", env=toolbox_env)
        yield m


def _record(master: Daemon, job_id: str) -> dict:  # type: ignore[type-arg]
    shown = arko(master.address, "job", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    record: dict = json.loads(shown.stdout)  # type: ignore[type-arg]
    return record


def _events(stdout: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stdout.splitlines()]


def test_deadline_ends_the_job_with_deadline_exceeded(master: Daemon) -> None:
    """--deadline 1 fails a 5 s job with DEADLINE_EXCEEDED, recorded so; --timeout does not."""
    done = arko(
        master.address,
        "--timeout",
        "30",
        "run",
        "--deadline",
        "1",
        "--json",
        "MyPipeline.Run",
        "param=a",
        "password=b",
    )
    assert done.returncode == 1, done.stderr
    final = _events(done.stdout)[-1]
    assert final["kind"] == "FINISHED"
    record = _record(master, final["job_id"])
    assert (record["state"], record["code"]) == ("FAILED", "DEADLINE_EXCEEDED")
    text = arko(master.address, "run", "--deadline", "1", "MyPipeline.Run", "param=a", "password=b")
    assert text.returncode == 1
    assert "failed" in text.stderr and text.stderr.count("DEADLINE_EXCEEDED") == 1
    helped = arko(master.address, "run", "--help").stdout
    assert "--deadline" in helped and "DEADLINE_EXCEEDED" in helped


def test_run_json_prints_every_event_from_accepted(master: Daemon) -> None:
    """--json gives ACCEPTED first, then STARTED, OUTPUT and FINISHED, one job id throughout."""
    done = arko(master.address, "run", "--json", ECHO, "name=x")
    assert done.returncode == 0, done.stderr
    events = _events(done.stdout)
    assert [e["kind"] for e in events] == ["ACCEPTED", "STARTED", "OUTPUT", "FINISHED"]
    assert [e["seq"] for e in events] == ["0", "1", "2", "3"]  # int64: a JSON string
    assert len({e["job_id"] for e in events}) == 1


def test_a_job_arko_run_waits_for_is_not_detached(master: Daemon) -> None:
    """The record says detached only for --detach; an attached run is recorded detached: false."""
    attached = _events(arko(master.address, "run", "--json", ECHO, "name=a").stdout)[-1]
    assert _record(master, attached["job_id"])["detached"] is False
    detached = arko(master.address, "run", "--detach", ECHO, "name=b")
    assert detached.returncode == 0, detached.stderr
    job_id = detached.stdout.strip()
    assert arko(master.address, "logs", "-f", job_id).returncode == 0
    assert _record(master, job_id)["detached"] is True


def test_a_failure_line_names_the_code_once(master: Daemon) -> None:
    """A slave's ABORTED reads 'ABORTED: disk full' once, not 'ABORTED: … ABORTED: …'."""
    done = arko(master.address, "run", FAIL, "code=ABORTED", "message=disk full")
    assert done.returncode == 1
    assert done.stderr.count("ABORTED") == 1 and "ABORTED: disk full" in done.stderr


def test_an_enum_field_takes_a_declared_number(master: Daemon) -> None:
    """level=2 runs with HIGH, as the manual says; an undeclared number is refused naming it."""
    done = arko(master.address, "run", ECHO, "level=2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["level"] == "HIGH"
    bad = arko(master.address, "run", ECHO, "level=7")
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT" in bad.stderr and "7 is none of" in bad.stderr


def test_piped_jobs_give_every_column_and_whole_method_names(master: Daemon) -> None:
    """``arko jobs | …`` reads tab-separated lines: all five columns, no method cut short."""
    assert arko(master.address, "run", ECHO, "name=piped").returncode == 0
    done = arko(master.address, "jobs", "--method", ECHO, "--limit", "1")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split("\t") == ["ID", "STATE", "METHOD", "CREATED", "TOOK"]
    assert row.split("\t")[1:3] == ["SUCCEEDED", ECHO]


def test_describe_gives_the_policy_in_words(master: Daemon) -> None:
    """describe prints the job policy as words, not as a Python dict; piped lines stay whole."""
    done = arko(master.address, "describe", "arko.testing.v1.Toolbox.Zoned")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "arko.testing.v1.Toolbox.Zoned(arko.testing.v1.SleepRequest) returns "
        "arko.testing.v1.ToolReply, unary\n"
    )
    assert "policy: timeout 1s; only on slaves labelled zone=b\n" in done.stdout
    assert "{" not in done.stdout.split("policy:")[1].splitlines()[0]
