"""Webhook triggers through a real master's HTTP port: signatures, filters, dedupe."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from arko.testing import Fleet, free_port, wait_until
from arko.v1 import admin_pb2, admin_pb2_grpc
from tests.integration.test_operator import arko

ECHO = "arko.testing.v1.Toolbox.Echo"
SECRET = "s3cret-hook"


def _config(tmp_path: Path, triggers: str) -> Path:
    (tmp_path / "hook-secret").write_text(SECRET + "\n")
    path = tmp_path / "master.toml"
    path.write_text(triggers)
    return path


GITHUB = f"""
[[trigger]]
name = "gh"
forge = "github"
secret_file = "hook-secret"
events = ["push"]
branches = ["main", "release/*"]
method = "{ECHO}"
params = {{ name = "${{/after}}", count = "${{/size}}", verbose = "true" }}

[[trigger]]
name = "gl"
forge = "gitlab"
secret_file = "hook-secret"
method = "{ECHO}"
params = {{ name = "${{/project/path_with_namespace}}" }}

[[trigger]]
name = "gt"
forge = "gitea"
secret_file = "hook-secret"
tags = ["v*"]
method = "{ECHO}"
params = {{ name = "${{/ref}}" }}
"""


class Hooked:
    """A master with triggers on its HTTP port, and one Toolbox slave."""

    def __init__(self, fleet: Fleet, toolbox_env: dict[str, str], config: str) -> None:
        self.fleet = fleet
        self.http = free_port()
        path = _config(fleet.workdir, config)
        self.master = fleet.master("--http_port", str(self.http), "--config", str(path))
        self.slave = fleet.slave(self.master, "--service", "toolbox_plugin:plugin", env=toolbox_env)
        self.base = f"http://127.0.0.1:{self.http}"

    def post(self, name: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{self.base}/hooks/{name}",
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=30,
        )

    def job(self, job_id: str) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            got = requests.get(f"{self.base}/api/v1/jobs/{job_id}", timeout=30).json()
            return got if got["state"] in ("SUCCEEDED", "FAILED") else None

        return wait_until(ended, 30, f"job {job_id} to end")

    def jobs(self) -> list[dict[str, Any]]:
        got = requests.get(f"{self.base}/api/v1/jobs", timeout=30).json()
        return list(got["jobs"])


def _github(body: bytes, secret: str = SECRET, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
    }


def _push(ref: str = "refs/heads/main") -> bytes:
    payload = {
        "ref": ref,
        "after": "0123abcd" * 5,
        "size": 3,
        "repository": {"full_name": "octo/hello", "clone_url": "https://x/octo/hello.git"},
    }
    return json.dumps(payload, indent=1).encode()  # exact bytes: whitespace and all


@pytest.fixture
def hooked(fleet: Fleet, toolbox_env: dict[str, str]) -> Hooked:
    return Hooked(fleet, toolbox_env, GITHUB)


def test_signed_github_push_runs_the_mapped_method(hooked: Hooked) -> None:
    """202 with the job's id and Location; the slave got the mapped parameters; trigger kept."""
    body = _push()
    headers = _github(body)
    answer = hooked.post("gh", body, headers)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["Location"] == f"/api/v1/jobs/{job_id}"
    job = hooked.job(job_id)
    assert job["state"] == "SUCCEEDED", job
    assert job["method"] == ECHO and job["trigger"] == "hook:gh"
    assert job["params"] == {"name": "0123abcd" * 5, "count": "3", "verbose": "true"}
    summary = json.loads(job["result"])["summary"]
    assert f"name={'0123abcd' * 5} count=3 verbose=True" in summary
    delivered = hooked.master.wait_for_event("hook_delivered")
    assert delivered["delivery"] == headers["X-GitHub-Delivery"] and delivered["job_id"] == job_id
    assert delivered["ref"] == "refs/heads/main" and delivered["forge_event"] == "push"
    rows = hooked.fleet.query(
        "SELECT job_id FROM delivery WHERE delivery = ?", headers["X-GitHub-Delivery"]
    )
    assert rows == [(job_id,)]
    assert "octo/hello.git" not in hooked.master.log_text()  # nothing of the body logged


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha256=bad"])
def test_missing_or_wrong_signature_is_401_and_starts_nothing(
    hooked: Hooked, signature: str | None
) -> None:
    """No job is made for a delivery without the right HMAC."""
    body = _push()
    headers = _github(body, secret="not-the-secret")
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature
    answer = hooked.post("gh", body, headers)
    assert answer.status_code == 401, answer.text
    assert hooked.jobs() == []


def test_a_body_changed_after_signing_is_401(hooked: Hooked) -> None:
    """The HMAC is over the exact bytes: one more space breaks it."""
    body = _push()
    answer = hooked.post("gh", body + b" ", _github(body))
    assert answer.status_code == 401
    assert hooked.jobs() == []


def test_unmatched_branch_or_event_is_skipped(hooked: Hooked) -> None:
    """200 with the reason; no job."""
    body = _push("refs/heads/feature/x")
    answer = hooked.post("gh", body, _github(body))
    assert answer.status_code == 200
    assert "feature/x" in answer.json()["skipped"]
    body = _push()
    answer = hooked.post("gh", body, _github(body, event="issues"))
    assert answer.status_code == 200 and "issues" in answer.json()["skipped"]
    assert hooked.jobs() == []


def test_a_glob_branch_matches(hooked: Hooked) -> None:
    body = _push("refs/heads/release/1.2")
    assert hooked.post("gh", body, _github(body)).status_code == 202


def test_the_same_delivery_twice_starts_one_job(hooked: Hooked) -> None:
    """A redelivery answers 200 with the first job's id."""
    body = _push()
    headers = _github(body)
    first = hooked.post("gh", body, headers)
    again = hooked.post("gh", body, headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"]
    hooked.job(first.json()["job_id"])
    assert len(hooked.jobs()) == 1


def test_unknown_trigger_is_404_and_too_large_is_413(hooked: Hooked) -> None:
    body = _push()
    assert hooked.post("nope", body, _github(body)).status_code == 404
    big = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    assert hooked.post("gh", big, _github(big)).status_code == 413


def test_hooks_need_no_client_token_but_the_api_does(
    fleet: Fleet, toolbox_env: dict[str, str]
) -> None:
    """With a client token set, /hooks/ takes a signed delivery; /api/v1 still wants the token."""
    token = fleet.workdir / "client-token"
    token.write_text("client-tok")
    http = free_port()
    config = _config(fleet.workdir, GITHUB)
    master = fleet.master(
        "--http_port", str(http), "--config", str(config), "--client_token_file", str(token)
    )
    body = _push()
    answer = requests.post(
        f"http://127.0.0.1:{http}/hooks/gh",
        data=body,
        headers={"Content-Type": "application/json", **_github(body)},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert requests.get(f"http://127.0.0.1:{http}/api/v1/jobs", timeout=30).status_code == 401
    assert master.alive()


def test_gitlab_token_form(hooked: Hooked) -> None:
    """GitLab sends the secret itself in X-Gitlab-Token; a wrong one is 401."""
    body = json.dumps({"ref": "refs/heads/dev", "project": {"path_with_namespace": "g/p"}}).encode()
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": str(uuid.uuid4())}
    wrong = hooked.post("gl", body, {**headers, "X-Gitlab-Token": "guess"})
    assert wrong.status_code == 401
    answer = hooked.post("gl", body, {**headers, "X-Gitlab-Token": SECRET})
    assert answer.status_code == 202, answer.text
    job = hooked.job(answer.json()["job_id"])
    assert job["params"] == {"name": "g/p"} and job["trigger"] == "hook:gl"


def test_gitea_signature_form_and_tag_filter(hooked: Hooked) -> None:
    """Gitea signs with a bare hex HMAC; its tag filter takes v* and skips branches' kin."""
    body = json.dumps({"ref": "refs/tags/v1.0"}).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": str(uuid.uuid4()),
        "X-Gitea-Signature": digest,
    }
    answer = hooked.post("gt", body, headers)
    assert answer.status_code == 202, answer.text
    assert hooked.job(answer.json()["job_id"])["params"] == {"name": "refs/tags/v1.0"}
    other = json.dumps({"ref": "refs/tags/nightly"}).encode()
    digest = hmac.new(SECRET.encode(), other, hashlib.sha256).hexdigest()
    skipped = hooked.post("gt", other, {**headers, "X-Gitea-Signature": digest})
    assert skipped.status_code == 200 and "nightly" in skipped.json()["skipped"]


def test_a_missing_secret_file_stops_the_master_naming_the_trigger(fleet: Fleet) -> None:
    config = fleet.workdir / "bad.toml"
    config.write_text(
        f'[[trigger]]\nname = "lost"\nforge = "github"\nsecret_file = "/nonexistent/x"\n'
        f'method = "{ECHO}"\n'
    )
    master = fleet.master("--http_port", str(free_port()), "--config", str(config), wait=False)
    assert master.proc is not None
    assert master.proc.wait(30) == 2
    assert "trigger 'lost'" in master.log_text()


LISTED = (
    GITHUB
    + f"""
[[schedule]]
name = "nightly"
cron = "0 3 * * *"
timezone = "Europe/Paris"
method = "{ECHO}"
"""
)


def test_triggers_are_listed_with_their_last_job_over_grpc_http_and_the_cli(
    fleet: Fleet, toolbox_env: dict[str, str]
) -> None:
    """Admin/ListTriggers, /api/v1/triggers and ``arko triggers --json`` agree."""
    hooked = Hooked(fleet, toolbox_env, LISTED)
    body = _push()
    job_id = hooked.post("gh", body, _github(body)).json()["job_id"]
    hooked.job(job_id)
    listed = requests.get(f"{hooked.base}/api/v1/triggers", timeout=30).json()["triggers"]
    assert [t["trigger"] for t in listed] == ["hook:gh", "hook:gl", "hook:gt", "schedule:nightly"]
    gh, nightly = listed[0], listed[-1]
    assert gh["kind"] == "github" and gh["path"] == "/hooks/gh"
    assert gh["last_job"]["id"] == job_id and gh["last_job"]["trigger"] == "hook:gh"
    assert "last_job" not in listed[1]
    assert nightly["when"] == "0 3 * * * (Europe/Paris)"
    assert nightly["next_time"].endswith(":00:00Z")  # 03:00 in Paris: 01:00 or 02:00 UTC
    with hooked.master.channel() as channel:
        reply = admin_pb2_grpc.AdminStub(channel).ListTriggers(
            admin_pb2.ListTriggersRequest(), timeout=30
        )
    assert [t.trigger for t in reply.triggers] == [t["trigger"] for t in listed]
    assert reply.triggers[0].last_job.id == job_id
    out = arko(hooked.master.address, "triggers", "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)["triggers"]
    assert [t["trigger"] for t in shown] == [t["trigger"] for t in listed]
    table = arko(hooked.master.address, "triggers")
    assert table.returncode == 0 and job_id in table.stdout and "schedule:nightly" in table.stdout


@pytest.mark.one_pass("its masters are on PostgreSQL in the SQLite pass already")
def test_a_delivery_posted_to_two_masters_on_postgresql_starts_one_job(
    postgres_url: str, fleet: Fleet, toolbox_env: dict[str, str]
) -> None:
    """The second master answers 200 with the first master's job; one job on record."""
    join = {"ARKO_MASTER_JOIN_TOKEN": "hooks-join", "ARKO_SLAVE_JOIN_TOKEN": "hooks-join"}
    config = _config(fleet.workdir, GITHUB)
    ports = [free_port(), free_port()]
    masters = [
        fleet.master(
            "--http_port",
            str(p),
            "--config",
            str(config),
            "--name",
            f"m{i}",
            db=postgres_url,
            env=join,
        )
        for i, p in enumerate(ports)
    ]
    fleet.slave(masters, "--service", "toolbox_plugin:plugin", env={**toolbox_env, **join})
    body = _push()
    headers = {"Content-Type": "application/json", **_github(body)}
    first, second = (
        requests.post(f"http://127.0.0.1:{p}/hooks/gh", data=body, headers=headers, timeout=30)
        for p in ports
    )
    assert first.status_code == 202, first.text
    assert second.status_code == 200 and second.json()["job_id"] == first.json()["job_id"]
    count = fleet.query("SELECT count(*) FROM delivery", db=postgres_url)
    assert count == [(1,)]
    wait_until(
        lambda: fleet.query("SELECT state FROM job", db=postgres_url) == [("succeeded",)],
        30,
        "the one job to succeed",
    )
