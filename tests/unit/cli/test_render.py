"""How the CLI renders records: piped tables, the job policy, the starred status."""

from __future__ import annotations

import datetime as dt
import io
import json
import shlex

from rich.console import Console
from typer.testing import CliRunner

from arko.cli.app import app
from arko.cli.render import (
    grpcurl_command,
    jobs_table,
    policy_line,
    slave_notes,
    slaves_table,
    tsv,
)
from arko.v1 import admin_pb2, jobs_pb2, options_pb2

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LONG = "acme.deploy.v1.ProductionDeployments.RollOutEverywhereCarefully"


def _job() -> jobs_pb2.Job:
    job = jobs_pb2.Job(id="ab" * 16, method=LONG, state=jobs_pb2.SUCCEEDED)
    job.created_at.FromDatetime(NOW - dt.timedelta(seconds=5))
    job.started_at.FromDatetime(NOW - dt.timedelta(seconds=4))
    job.ended_at.FromDatetime(NOW - dt.timedelta(seconds=2))
    return job


def test_a_piped_table_keeps_every_column_and_whole_values() -> None:
    """tsv(): a header, then a row a line, tab-separated, the long method name whole."""
    lines = tsv(jobs_table([_job()], NOW)).splitlines()
    assert lines[0].split("\t") == ["ID", "STATE", "METHOD", "CREATED", "TOOK"]
    assert lines[1].split("\t") == ["ab" * 16, "SUCCEEDED", LONG, "5s ago", "2.0s"]


def test_the_terminal_table_still_fits_80_columns() -> None:
    """On an 80-column terminal the same table gives way in METHOD only."""
    console = Console(width=80, file=io.StringIO())
    console.print(jobs_table([_job()], NOW))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "ab" * 16 in text and LONG not in text


def test_the_policy_reads_as_words() -> None:
    """describe's policy line names each setting, not a Python dict."""
    policy = options_pb2.JobPolicy(
        timeout_seconds=900, max_concurrency=1, required_labels={"zone": "b"}, retries=2
    )
    line = policy_line(policy)
    assert line == (
        "timeout 900s; one job at a time; only on slaves labelled zone=b; "
        "sent again up to 2 times when it never started"
    )
    assert "{" not in line
    assert policy_line(options_pb2.JobPolicy(max_concurrency=3)) == "at most 3 jobs at a time"
    assert policy_line(options_pb2.JobPolicy()) == "none"


def test_a_starred_status_has_a_footnote_saying_why() -> None:
    """A slave with a reason shows DOWN*, and a note names it and the reason; others none."""
    down = admin_pb2.SlaveInfo(address="127.0.0.1:50052", status="DOWN", reason="ping timed out")
    live = admin_pb2.SlaveInfo(address="127.0.0.1:50053", status="LIVE")
    rows = tsv(slaves_table([down, live], NOW)).splitlines()
    assert rows[1].split("\t")[1] == "DOWN*" and rows[2].split("\t")[1] == "LIVE"
    assert slave_notes([down, live]) == ["* 127.0.0.1:50052 DOWN: ping timed out"]
    assert slave_notes([live]) == []


def test_help_says_what_the_star_and_the_two_timeouts_mean() -> None:
    """``slaves --help`` explains DOWN*; ``run --help`` tells --deadline from --timeout."""
    runner = CliRunner()
    slaves = runner.invoke(app, ["slaves", "--help"], terminal_width=200)
    assert "A starred status (DOWN*) has a reason" in slaves.output
    run = runner.invoke(app, ["run", "--help"], terminal_width=200)
    assert "DEADLINE_EXCEEDED" in run.output and "--timeout bounds only" in run.output


def test_the_grpcurl_line_keeps_secret_references() -> None:
    """``${secret:NAME}`` under any name stays in the rerun command: the master fills it in."""
    job = jobs_pb2.Job(method="Deploy.Run", params={"password": "${secret:PW}", "pwd": "***"})
    job.args.update({"api_token": "${secret:TOKEN}"})
    argv = shlex.split(grpcurl_command(job, "127.0.0.1:10001", []))
    body = json.loads(argv[argv.index("-d") + 1])
    assert body["params"] == {"password": "${secret:PW}", "pwd": "<PWD>"}
    assert body["args"] == {"api_token": "${secret:TOKEN}"}
