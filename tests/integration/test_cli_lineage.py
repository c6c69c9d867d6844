"""``arko rerun``, ``arko job``'s tree of children and ``arko jobs --parent`` on real daemons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from arko.testing import Daemon, Fleet
from tests.integration.lineage import Tree, store_tree
from tests.integration.test_operator import arko


@dataclass
class Site:
    master: Daemon
    tree: Tree


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A master with the example slave (no Run delay), and a finished tree of jobs stored."""
    with Fleet(tmp_path_factory.mktemp("cli_lineage")).running() as fleet:
        master = fleet.master()
        fleet.slave(master, "--run_delay", "0")
        yield Site(master, store_tree(fleet.database()))


def _json(master: Daemon, *args: str) -> dict:  # type: ignore[type-arg]
    done = arko(master.address, *args, "--json")
    assert done.returncode == 0, done.stderr
    value: dict = json.loads(done.stdout)  # type: ignore[type-arg]
    return value


def _run(master: Daemon, *pairs: str) -> str:
    done = arko(master.address, "run", "--json", "MyPipeline.DryRun", *pairs)
    assert done.returncode == 0, done.stderr
    final: dict = json.loads(done.stdout.splitlines()[-1])  # type: ignore[type-arg]
    job_id: str = final["job_id"]
    return job_id


def test_rerun_runs_the_same_method_with_the_same_params_and_args(site: Site) -> None:
    """The new job has the record's method, params and args, runs and succeeds; -d detaches."""
    first = _run(site.master, "param=again")
    done = arko(site.master.address, "rerun", first)
    assert done.returncode == 0, done.stderr
    events = json.loads(arko(site.master.address, "rerun", first, "--json").stdout.splitlines()[-1])
    assert events["kind"] == "FINISHED" and events["job"]["state"] == "SUCCEEDED"
    second = events["job_id"]
    assert second != first
    old, new = _json(site.master, "job", first), _json(site.master, "job", second)
    same = ("method", "params", "args")
    assert [new.get(k) for k in same] == [old.get(k) for k in same]
    assert new["params"] == {"param": "again"}
    assert new["result"] == old["result"]

    detached = arko(site.master.address, "rerun", "--detach", first)
    assert detached.returncode == 0, detached.stderr
    third = detached.stdout.strip()
    assert len(third) == 32 and third not in (first, second)
    assert _json(site.master, "job", third)["params"] == {"param": "again"}


def test_rerun_refuses_a_record_with_a_hidden_value(site: Site) -> None:
    """A password recorded as *** cannot be sent again: exit 2, saying where, no job made."""
    hidden = _run(site.master, "param=p", "password=pw-123")
    before = len(_json(site.master, "jobs", "--limit", "1000")["jobs"])
    refused = arko(site.master.address, "rerun", hidden)
    assert refused.returncode == 2
    assert "params.password" in refused.stderr and "cannot be sent again" in refused.stderr
    assert "pw-123" not in refused.stderr + refused.stdout
    assert len(_json(site.master, "jobs", "--limit", "1000")["jobs"]) == before


def test_job_shows_its_children_as_a_tree(site: Site) -> None:
    """Under the record: one line a child (state, method, id, slave, inputs), nested; --json
    nests too."""
    tree = site.tree
    shown = arko(site.master.address, "job", tree.root)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    at = lines.index("children:")
    assert lines[at + 1 :] == [
        f"├─ SUCCEEDED    Ci.Lint  {tree.lint}  127.0.0.1:1  ref=main",
        f"└─ FAILED       Ci.Test  {tree.test}  127.0.0.1:1  ref=main",
        f"   └─ FAILED       Ci.Unit  {tree.unit}  127.0.0.1:1  ref=main",
    ]
    record = _json(site.master, "job", tree.root)
    assert [c["id"] for c in record["children"]] == [tree.lint, tree.test]
    assert record["children"][1]["children"][0]["id"] == tree.unit
    assert record["children"][1]["children"][0]["trigger"] == "job"
    leaf = arko(site.master.address, "job", tree.unit)
    assert "children:" not in leaf.stdout and f"id:       {tree.unit}" in leaf.stdout
    grpcurl = arko(site.master.address, "job", tree.root, "--grpcurl")
    assert grpcurl.returncode == 0 and grpcurl.stdout.startswith("grpcurl ")
    assert "children" not in grpcurl.stdout


def test_jobs_lists_the_children_of_a_parent(site: Site) -> None:
    """--parent ID lists that job's children only; a bad id is a usage error."""
    tree = site.tree
    listed = _json(site.master, "jobs", "--parent", tree.root)["jobs"]
    assert sorted(j["id"] for j in listed) == sorted([tree.lint, tree.test])
    table = arko(site.master.address, "jobs", "--parent", tree.test)
    assert table.returncode == 0 and tree.unit in table.stdout and tree.lint not in table.stdout
    bad = arko(site.master.address, "jobs", "--parent", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr
