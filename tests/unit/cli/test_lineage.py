"""``arko job``'s tree of children and ``arko rerun``'s request, without a master."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from google.protobuf import struct_pb2

from arko.cli.client import CliError, Exit, Stubs
from arko.cli.lineage import fetch_tree, tree_dicts, tree_lines
from arko.cli.rerun import hidden_values, rerun_request
from arko.v1 import jobs_pb2


def _job(job_id: str, parent: str = "", second: int = 0, **kw: Any) -> jobs_pb2.Job:
    job = jobs_pb2.Job(id=job_id, parent_id=parent, method=f"Ci.{job_id}", **kw)
    job.created_at.FromSeconds(1_700_000_000 + second)
    return job


@dataclass
class _Jobs:
    """Jobs/List over a list of records, one record a page, asked calls kept."""

    records: list[jobs_pb2.Job]
    asked: list[tuple[str, str]] = field(default_factory=list)

    def List(self, request: jobs_pb2.ListJobsRequest, **_: Any) -> jobs_pb2.ListJobsResponse:
        self.asked.append((request.parent_id, request.page_token))
        mine = [j for j in self.records if j.parent_id == request.parent_id]
        start = int(request.page_token or 0)
        more = str(start + 1) if start + 1 < len(mine) else ""
        return jobs_pb2.ListJobsResponse(jobs=mine[start : start + 1], next_page_token=more)


@dataclass
class _Stubs:
    jobs: _Jobs

    def options(self, timeout: bool = True) -> dict[str, Any]:
        return {}


def test_the_tree_is_fetched_level_by_level_and_printed_nested() -> None:
    """Every page of every level is asked for; children read oldest first, nested under theirs."""
    records = [
        _job("test", "root", 2, state=jobs_pb2.FAILED, slave="127.0.0.1:7002"),
        _job("lint", "root", 1, state=jobs_pb2.SUCCEEDED, slave="127.0.0.1:7001"),
        _job("unit", "test", 3, state=jobs_pb2.RUNNING),
    ]
    jobs = _Jobs(records)
    tree = fetch_tree(cast(Stubs, _Stubs(jobs)), "root")
    assert jobs.asked == [("root", ""), ("root", "1"), ("lint", ""), ("test", ""), ("unit", "")]
    assert tree_lines(tree) == [
        "├─ SUCCEEDED    Ci.lint  lint  127.0.0.1:7001",
        "└─ FAILED       Ci.test  test  127.0.0.1:7002",
        "   └─ RUNNING      Ci.unit  unit  -",
    ]
    shown = tree_dicts(tree)
    assert [c["id"] for c in shown] == ["lint", "test"]
    assert shown[1]["children"][0]["id"] == "unit"
    assert shown[1]["children"][0]["children"] == []


def test_a_looping_record_is_placed_once() -> None:
    """A job listed under its own descendant does not make the walk loop."""
    jobs = _Jobs([_job("a", "root"), _job("b", "a"), _job("root", "b")])
    tree = fetch_tree(cast(Stubs, _Stubs(jobs)), "root")
    assert tree_lines(tree)[1].strip().startswith("└─")
    assert len(tree_lines(tree)) == 2


def test_method_and_slave_are_shown_escaped() -> None:
    """Wire text in a tree line cannot drive the terminal."""
    tree = fetch_tree(cast(Stubs, _Stubs(_Jobs([_job("x\x1b[2J", "r", slave="s\x07")]))), "r")
    assert "\x1b" not in tree_lines(tree)[0] and "\\x1b" in tree_lines(tree)[0]
    assert "\\x07" in tree_lines(tree)[0]


def _args(value: dict[str, Any]) -> struct_pb2.Struct:
    args = struct_pb2.Struct()
    args.update(value)
    return args


def test_siblings_of_one_method_are_told_apart_by_their_plain_inputs() -> None:
    """A pipeline's steps are all Steps.Run: the line shows step=lint, not the nested params."""
    lint = _job("a", "r", args=_args({"step": "lint", "params": {"x": "1"}}))
    deploy = _job("b", "r", second=1, params={"tag": "v1"}, args=_args({"n": 2, "w": "y" * 60}))
    lines = tree_lines(fetch_tree(cast(Stubs, _Stubs(_Jobs([lint, deploy]))), "r"))
    assert lines[0].endswith("  step=lint")
    assert "n=2.0 tag=v1 w=yyy" in lines[1] and lines[1].endswith("…")


def test_rerun_sends_the_recorded_method_params_and_args() -> None:
    """Secret references re-run as they are; the request is the record's."""
    job = jobs_pb2.Job(
        id="j",
        method="Deploy.Run",
        params={"ref": "main", "key": "${secret:DEPLOY_KEY}"},
        args=_args({"target": "prod", "n": 2}),
    )
    request = rerun_request(job, detach=True)
    assert (request.method, dict(request.params), request.detach) == (
        "Deploy.Run",
        {"ref": "main", "key": "${secret:DEPLOY_KEY}"},
        True,
    )
    assert dict(request.args) == {"target": "prod", "n": 2.0}
    assert not rerun_request(jobs_pb2.Job(method="A.B"), detach=False).HasField("args")


def test_rerun_refuses_a_hidden_value_naming_where_it_was() -> None:
    """*** anywhere (a param, inside a param's JSON, deep in args) is a usage error."""
    job = jobs_pb2.Job(
        id="j",
        method="Deploy.Run",
        params={"password": "***", "config": '{"db": {"token": "***"}}', "note": "[x"},
        args=_args({"deploy": {"hosts": ["a", "***"]}}),
    )
    assert hidden_values(job) == [
        "params.config.db.token",
        "params.password",
        "args.deploy.hosts[1]",
    ]
    with pytest.raises(CliError) as refused:
        rerun_request(job, detach=False)
    assert refused.value.code == Exit.USAGE
    assert "params.password" in refused.value.message
    assert "cannot be sent again" in refused.value.message
    assert hidden_values(jobs_pb2.Job(params={"title": "*** release ***"})) == []
