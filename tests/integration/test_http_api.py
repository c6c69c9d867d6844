"""The HTTP API against a real master and slave: status codes, event order, auth, TLS."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from arko.testing import Fleet, free_port
from tests import readme
from tests.integration.lineage import store_tree
from tests.integration.web import Web, sse, start_web
from tests.pki import CertificateAuthority

RUN = "/api/v1/run"


@pytest.fixture
def web(fleet: Fleet) -> Web:
    return start_web(fleet)


def test_slaves_and_methods_are_listed(web: Web) -> None:
    """The slave shows with its status, fields and methods; each method names its slaves."""
    slaves = web.get("/api/v1/slaves").json()["slaves"]
    assert len(slaves) == 1
    slave = slaves[0]
    assert slave["status"] == "live"
    assert {"MyPipeline.DryRun", "MyPipelineLogs.Stream"} <= set(slave["methods"])
    assert {"capacity", "running", "labels", "version"} <= set(slave)
    methods = {m["name"]: m for m in web.get("/api/v1/methods").json()["methods"]}
    assert methods["MyPipeline.Run"]["slaves"] == [slave["address"]]
    assert methods["MyPipeline.Run"]["live"] == 1


def test_method_schema_comes_from_the_descriptors(web: Web) -> None:
    """Field types and secrets are described; unknown and malformed names are 404 and 400."""
    schema = web.get("/api/v1/methods/MyPipelineLogs.Stream").json()
    assert schema["server_streaming"] is True
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["lines"]["type"] == "int32"
    assert fields["interval"]["type"] == "double"
    assert fields["prefix"]["secret"] is False
    run = {f["name"]: f for f in web.get("/api/v1/methods/MyPipeline.Run").json()["fields"]}
    assert run["password"]["secret"] is True
    missing = web.get("/api/v1/methods/MyPipeline.Deploy")
    assert missing.status_code == 404
    assert "MyPipeline.Deploy" in missing.json()["error"]["message"]
    assert web.get("/api/v1/methods/no-dot").status_code == 400


def test_run_with_wait_answers_the_finished_job(web: Web) -> None:
    """``?wait=true`` answers 200 with id, state and the slave's reply."""
    reply = web.post(f"{RUN}/MyPipeline.DryRun?wait=true", json={"param": "one"})
    assert reply.status_code == 200, reply.text
    job = reply.json()
    assert job["state"] == "SUCCEEDED"
    assert json.loads(job["result"]) == {"message": "job execution done"}
    assert web.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "SUCCEEDED"


def test_run_without_wait_is_accepted_with_urls(web: Web) -> None:
    """Without wait: 202 at once, the job's URLs, and the job runs on to its end."""
    reply = web.post(f"{RUN}/MyPipeline.Run", json={"param": "x", "password": "hunter2"})
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert reply.headers["Location"] == body["urls"]["job"] == f"/api/v1/jobs/{body['id']}"
    job = web.wait_job(body["id"], "SUCCEEDED")
    assert job["args"]["password"] == "***"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"lines": "many"}, "lines"),
        ({"colour": "red"}, "colour"),
        ({"interval": [1]}, "interval"),
    ],
)
def test_bad_bodies_are_refused_before_dispatch(web: Web, body: dict, named: str) -> None:
    """A body that does not fit the request message is a 400 naming the field; no job is made."""
    reply = web.post(f"{RUN}/MyPipelineLogs.Stream", json=body)
    assert reply.status_code == 400, reply.text
    assert named in reply.json()["error"]["message"]
    assert web.get("/api/v1/jobs?method=MyPipelineLogs.Stream").json()["jobs"] == []


def test_malformed_requests_are_400_and_unknown_ones_404(web: Web) -> None:
    """Not JSON, not an object, a bad wait flag, bad ids and filters: 400; unknown: 404."""
    as_json = {"Content-Type": "application/json"}
    assert web.post(f"{RUN}/MyPipeline.DryRun", data="{", headers=as_json).status_code == 400
    assert web.post(f"{RUN}/MyPipeline.DryRun", json=[1]).status_code == 400
    assert web.post(f"{RUN}/MyPipeline.DryRun?wait=maybe", json={}).status_code == 400
    assert web.post(f"{RUN}/Nope.Nothing", json={}).status_code == 404
    assert web.get("/api/v1/jobs/xyz").status_code == 400
    assert web.get(f"/api/v1/jobs/{'a' * 32}").status_code == 404
    assert web.get(f"/api/v1/jobs/{'a' * 32}/events").status_code == 404
    assert web.get("/api/v1/jobs?state=bogus").status_code == 400
    assert web.get("/api/v1/jobs?page_size=lots").status_code == 400
    assert web.get("/api/v1/nothing-here").status_code == 404
    assert web.post("/api/v1/jobs", json={"params": {}}).status_code == 400


@pytest.mark.parametrize("kind", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_posts_must_be_json(web: Web, kind: str | None) -> None:
    """A POST a browser could send cross-site without asking (no JSON type) runs nothing."""
    headers = {"Content-Type": kind} if kind else {}
    reply = web.post(f"{RUN}/MyPipeline.DryRun", data='{"param": "x"}', headers=headers)
    assert reply.status_code == 400
    assert "application/json" in reply.json()["error"]["message"]
    assert web.get("/api/v1/jobs").json()["jobs"] == []


def test_jobs_are_created_listed_and_filtered(web: Web) -> None:
    """POST /api/v1/jobs takes Jobs/Run's body; the list filters by method and state."""
    made = web.post(
        "/api/v1/jobs?wait=true", json={"method": "MyPipeline.DryRun", "params": {"param": "p"}}
    ).json()
    web.post(f"{RUN}/MyPipelineLogs.Stream?wait=true", json={"lines": -1})  # the slave refuses
    jobs = web.get("/api/v1/jobs").json()["jobs"]
    assert [j["method"] for j in jobs] == ["MyPipelineLogs.Stream", "MyPipeline.DryRun"]
    ok = web.get("/api/v1/jobs?state=succeeded").json()["jobs"]
    assert [j["id"] for j in ok] == [made["id"]]
    failed = web.get("/api/v1/jobs", params={"method": "MyPipelineLogs.Stream"}).json()["jobs"]
    assert [j["state"] for j in failed] == ["FAILED"]
    page = web.get("/api/v1/jobs?page_size=1").json()
    assert len(page["jobs"]) == 1 and page["next_page_token"]


def test_jobs_are_listed_by_parent(fleet: Fleet, web: Web) -> None:
    """?parent_id= lists one level of a job's children, with their lineage fields; bad ids 400."""
    tree = store_tree(fleet.database())
    children = web.get("/api/v1/jobs", params={"parent_id": tree.root}).json()["jobs"]
    assert sorted(j["id"] for j in children) == sorted([tree.lint, tree.test])
    assert {(j["parent_id"], j["trigger"], j["depth"]) for j in children} == {(tree.root, "job", 1)}
    grandchildren = web.get("/api/v1/jobs", params={"parent_id": tree.test}).json()["jobs"]
    assert [j["id"] for j in grandchildren] == [tree.unit]
    root = web.get(f"/api/v1/jobs/{tree.root}").json()
    assert (root["parent_id"], root["trigger"], root["depth"]) == ("", "api", 0)
    assert web.get("/api/v1/jobs", params={"parent_id": tree.unit}).json()["jobs"] == []
    bad = web.get("/api/v1/jobs", params={"parent_id": "nope"})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]["message"]


def test_events_arrive_in_order_live_then_stored(web: Web) -> None:
    """SSE: ACCEPTED, STARTED, each line, FINISHED in sequence, live and on read-back."""
    started = web.post(f"{RUN}/MyPipelineLogs.Stream", json={"lines": 4, "interval": 0.2})
    job_id = started.json()["id"]
    with web.get(f"/api/v1/jobs/{job_id}/events", stream=True) as live:
        assert live.headers["Content-Type"].startswith("text/event-stream")
        events = list(sse(live))
    kinds = [e["kind"] for e in events]
    assert kinds == ["ACCEPTED", "STARTED", "OUTPUT", "OUTPUT", "OUTPUT", "OUTPUT", "FINISHED"]
    assert [int(e.get("seq", 0)) for e in events] == list(range(7))
    assert [json.loads(e["output"])["number"] for e in events if e["kind"] == "OUTPUT"] == [
        1,
        2,
        3,
        4,
    ]
    assert events[-1]["job"]["state"] == "SUCCEEDED"
    with web.get(f"/api/v1/jobs/{job_id}/events", stream=True) as stored:
        assert list(sse(stored)) == events
    resumed = web.get(f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "4"}, stream=True)
    assert [int(e["seq"]) for e in sse(resumed)] == [5, 6]


def test_cancel_stops_a_running_job(web: Web) -> None:
    """POST .../cancel answers the ended record, CANCELLED, with who cancelled it."""
    job_id = web.post(f"{RUN}/MyPipelineLogs.Stream", json={"lines": 500, "interval": 0.1}).json()[
        "id"
    ]
    web.wait_job(job_id, "RUNNING")
    reply = web.post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": "wrong branch"})
    assert reply.status_code == 200, reply.text
    job = reply.json()
    assert job["state"] == "CANCELLED"
    assert "wrong branch" in job["cancelled_by"]


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong-token", 401),
        ("Basic tok-123456", 401),
        ("Bearer tok-123456", 200),
    ],
)
def test_client_token_guards_the_api(fleet: Fleet, header: str | None, status: int) -> None:
    """The API and /openapi.json need the client token gRPC needs."""
    web = start_web(fleet, env={"ARKO_MASTER_CLIENT_TOKEN": "tok-123456"}, slave=False)
    headers = {"Authorization": header} if header else {}
    assert web.get("/api/v1/slaves", headers=headers).status_code == status
    run = web.post(f"{RUN}/MyPipeline.DryRun?wait=true", json={}, headers=headers)
    assert run.status_code == (status if status != 200 else 404)  # no slave offers it
    assert web.get("/openapi.json", headers=headers).status_code == status
    assert "tok-123456" not in web.master.log_text()


def test_http_is_off_by_default(fleet: Fleet) -> None:
    """Without --http_port the master serves no HTTP at all."""
    master = fleet.master()
    assert not master.events("http_started")


def test_https_with_mutual_tls(fleet: Fleet, tmp_path: Path) -> None:
    """With --tls and --ca_file, HTTP is HTTPS and wants a client certificate from the CA."""
    folder = tmp_path / "pki"
    folder.mkdir()
    ca = CertificateAuthority(folder)
    master_cert = ca.issue("arko-master")
    client = ca.issue("ci-client", client=True)
    port = free_port()
    master = fleet.master("--http_port", str(port), *ca.daemon_flags(master_cert), wait=False)
    master.wait_for_event("http_started")
    url = f"https://127.0.0.1:{port}/api/v1/slaves"
    ok = requests.get(
        url, verify=str(ca.cert_path), cert=(str(client.cert), str(client.key)), timeout=30
    )
    assert ok.status_code == 200
    # TLS 1.3 checks the client's certificate after the handshake: the
    # server then drops the connection, which requests reports as such.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, verify=str(ca.cert_path), timeout=30)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/api/v1/slaves", timeout=30)


def test_manual_webhook_example_works_with_curl(fleet: Fleet) -> None:
    """The manual's curl webhook call, run as written (address and token filled in)."""
    curl = shutil.which("curl")
    assert curl, "curl is missing: the manual's webhook example needs it"
    web = start_web(fleet, env={"ARKO_MASTER_CLIENT_TOKEN": "tok-123456"})
    blocks = readme.blocks(readme.read("docs/web-ui.md"))
    block = next(b for b in blocks if "/api/v1/run/MyPipeline.DryRun?wait=true" in b)
    command = re.search(r"^curl .*?[^\\]$", block, re.MULTILINE | re.DOTALL)
    assert command, "no curl command in the manual's webhook block"
    script = command.group(0).replace("http://127.0.0.1:8080", web.url)
    result = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], "ARKO_TOKEN": "tok-123456"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job = json.loads(result.stdout)
    assert job["state"] == "SUCCEEDED"
    assert json.loads(job["result"]) == {"message": "job execution done"}


def test_ui_files_and_history_fallback(fleet: Fleet, tmp_path: Path) -> None:
    """Built files are served as they are; any other page gets index.html; API 404s stay JSON."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<div id=app></div>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside the UI folder")
    web = start_web(fleet, "--ui_dir", str(dist), slave=False)
    assert web.get("/assets/app.js").text == "console.log(1)"
    for page in ("/", "/jobs/0123", "/run/MyPipeline.Run", "/secret.txt"):
        reply = web.get(page)
        assert (reply.status_code, reply.text) == (200, "<div id=app></div>"), page
    missing = web.get("/api/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"


def test_unbuilt_ui_says_how_to_build_it(fleet: Fleet, tmp_path: Path) -> None:
    """Without a built UI, / explains how to build it instead of failing silently."""
    web = start_web(fleet, "--ui_dir", str(tmp_path / "nothing"), slave=False)
    reply = web.get("/")
    assert reply.status_code == 404
    assert "make ui" in reply.text and "Node.js" in reply.text
    assert web.get("/api/v1/slaves").status_code == 200


def test_master_stops_cleanly_with_an_event_stream_open(fleet: Fleet) -> None:
    """SIGTERM while a browser follows a running job: the watcher learns it was interrupted."""
    web = start_web(fleet, "--grace", "1")
    job_id = web.post(f"{RUN}/MyPipelineLogs.Stream", json={"lines": 500, "interval": 0.2}).json()[
        "id"
    ]
    with web.get(f"/api/v1/jobs/{job_id}/events", stream=True) as stream:
        events = sse(stream)
        assert [next(events)["kind"] for _ in range(3)] == ["ACCEPTED", "STARTED", "OUTPUT"]
        assert web.master.stop() == 0
        rest = list(events)
    assert rest[-1]["kind"] == "FINISHED"
    assert rest[-1]["job"]["state"] == "INTERRUPTED"
    assert "Traceback" not in web.master.log_text()
