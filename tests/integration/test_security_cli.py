"""Wire text through the real daemons: no raw ESC on the CLI's terminal, no record of a bad call."""

from __future__ import annotations

import json

import grpc
import pytest

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Fleet
from arko.v1 import jobs_pb2, jobs_pb2_grpc
from tests.integration.test_operator import arko

FAIL = "arko.testing.v1.Toolbox.Fail"
HOSTILE = "retitled \x1b]0;pwned\x07 and cleared \x1b[2J"


def test_a_slaves_escape_sequences_reach_the_terminal_escaped(
    fleet: Fleet, toolbox_env: dict[str, str]
) -> None:
    """A slave error with ESC sequences: arko run, arko job and arko jobs print no raw ESC."""
    master = fleet.master()
    fleet.slave(master, "--service", "toolbox_plugin:plugin", env=toolbox_env)
    ran = arko(master.address, "run", FAIL, "code=ABORTED", f"message={HOSTILE}")
    assert ran.returncode == 1
    assert "\x1b" not in ran.stdout + ran.stderr
    assert "\\x1b]0;pwned\\x07" in ran.stderr and "\\x1b[2J" in ran.stderr
    events = arko(master.address, "run", "--json", FAIL, "code=ABORTED", f"message={HOSTILE}")
    job_id = json.loads(events.stdout.splitlines()[-1])["job_id"]
    shown = arko(master.address, "job", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\\x1b[2J" in shown.stdout
    listed = arko(master.address, "jobs")
    assert listed.returncode == 0 and "\x1b" not in listed.stdout


@pytest.mark.parametrize("method", ["", "no dot", "\x1b[2J.Run", "a" * 600 + ".Run"])
def test_a_malformed_method_via_execute_job_leaves_no_record(fleet: Fleet, method: str) -> None:
    """ExecuteJob refuses a malformed method with INVALID_ARGUMENT before recording a job."""
    master = fleet.master()
    channel = master.channel()
    with pytest.raises(grpc.RpcError) as refused:
        execution_pb2_grpc.ExecutionStub(channel).ExecuteJob(
            execution_pb2.JobParams(method=method), timeout=30
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "method" in (refused.value.details() or "")
    listed = jobs_pb2_grpc.JobsStub(channel).List(jobs_pb2.ListJobsRequest(), timeout=30)
    assert list(listed.jobs) == []
