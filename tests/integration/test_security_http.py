"""The HTTP surface: Host check against DNS rebinding, security headers, malformed requests."""

from __future__ import annotations

import pytest
import requests

from arko.testing import Fleet, free_port
from tests.integration.web import Web, start_web

RUN = "/api/v1/run/MyPipeline.Run?wait=true"
HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def web(fleet: Fleet) -> Web:
    return start_web(fleet)


def _port(web: Web) -> str:
    return web.url.rsplit(":", 1)[1]


def test_foreign_host_is_refused_and_runs_nothing(web: Web) -> None:
    """A request naming another site's Host (DNS rebinding) is 421 and no job is made."""
    refused = web.post(RUN, json={"param": "x"}, headers={"Host": f"evil.example:{_port(web)}"})
    assert refused.status_code == 421
    assert "--http_allowed_hosts" in refused.text
    assert "evil.example" in refused.text
    for path in ("/", "/openapi.json", "/api/v1/jobs"):
        assert web.get(path, headers={"Host": "evil.example"}).status_code == 421, path
    assert web.get("/api/v1/jobs").json()["jobs"] == []
    assert web.master.events("http_host_refused")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "127.0.0.1", "localhost"])
def test_the_masters_own_names_are_answered(web: Web, host: str) -> None:
    """The listen address and localhost, with or without the port, reach the API."""
    answered = web.post(RUN, json={"param": "x"}, headers={"Host": host.format(port=_port(web))})
    assert answered.status_code == 200, answered.text
    assert answered.json()["state"] == "SUCCEEDED"


def test_allowed_hosts_adds_names(fleet: Fleet) -> None:
    """--http_allowed_hosts (flag or env) names the hosts a proxy or DNS name brings in."""
    # One master at a time: both use the fleet's database, which one master holds.
    for args, env in (
        (("--http_allowed_hosts", "ci.example,Arko.Internal"), None),
        ((), {"ARKO_MASTER_HTTP_ALLOWED_HOSTS": "ci.example"}),
    ):
        web = start_web(fleet, *args, env=env, slave=False)
        assert web.get("/api/v1/slaves", headers={"Host": "ci.example:443"}).status_code == 200
        assert web.get("/api/v1/slaves", headers={"Host": "evil.example"}).status_code == 421
        if args:
            names = web.get("/api/v1/slaves", headers={"Host": "arko.internal"})
            assert names.status_code == 200
        assert web.master.stop() == 0


def test_wildcard_listen_answers_addresses_but_not_names(fleet: Fleet) -> None:
    """On every interface any IP address is the master's (it cannot be rebound); names are not."""
    port = free_port()
    master = fleet.master("--http_port", str(port), listen_host=None)
    master.wait_for_event("http_started")
    web = Web(master, f"http://127.0.0.1:{port}", requests.Session())
    for host in (f"[::1]:{port}", "10.9.8.7", "localhost"):
        assert web.get("/api/v1/slaves", headers={"Host": host}).status_code == 200, host
    assert web.get("/api/v1/slaves", headers={"Host": "rebound.example"}).status_code == 421


@pytest.mark.parametrize("path", ["/", "/jobs/abc", "/openapi.json", "/api/v1/slaves", "/api/v1/x"])
def test_security_headers_on_every_response(web: Web, path: str) -> None:
    """Pages, the API, its description and errors all carry CSP, nosniff and Referrer-Policy."""
    response = web.get(path)
    for name, part in HEADERS.items():
        assert part in response.headers.get(name, ""), (name, response.headers)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_malformed_requests_are_4xx_without_traceback(web: Web) -> None:
    """What a probe sends (NULs, long paths, odd digits, deep JSON) is refused by name."""
    job = web.post(RUN, json={"param": "x"}).json()
    deep = "[" * 100_000 + "]" * 100_000
    # Sent as UTF-8, as curl does: "²" passes str.isdigit() and fails int().
    answers = {
        "nul": web.get("/%00"),
        "nul inside": web.get("/a%00b"),
        "long path": web.get("/" + "a" * 6000),
        "superscript id": web.get(
            f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "²".encode()}
        ),
        "huge id": web.get(
            f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "9" * 5000}
        ),
        "deep json": web.post(
            "/api/v1/jobs", data=deep, headers={"Content-Type": "application/json"}
        ),
        "deep run": web.post(
            "/api/v1/run/MyPipeline.Run", data=deep, headers={"Content-Type": "application/json"}
        ),
    }
    statuses = {what: r.status_code for what, r in answers.items()}
    assert all(400 <= s < 500 for s in statuses.values()), statuses
    for what, response in answers.items():
        assert len(response.text) < 300 and "Traceback" not in response.text, what
    assert "nested too deeply" in answers["deep json"].text
    assert answers["nul"].headers["X-Content-Type-Options"] == "nosniff"
    assert "Last-Event-ID" in answers["superscript id"].text
    assert "Traceback" not in web.master.log_text()
    assert web.master.alive()
