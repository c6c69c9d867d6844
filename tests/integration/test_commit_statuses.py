"""GitHub commit statuses, received in order by a fake GitHub API the test serves on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiohttp import web

from arko.testing import Fleet, free_port, wait_until
from tests.integration.test_triggers import SECRET, _github, _push

ECHO = "arko.testing.v1.Toolbox.Echo"
FAIL = "arko.testing.v1.Toolbox.Fail"
TOKEN = "gh-status-token"


class FakeGitHub:
    """``POST /repos/{owner}/{repo}/statuses/{sha}`` on 127.0.0.1; the first post fails (502)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _status(self, request: web.Request) -> web.Response:
        if self.refused == 0:
            self.refused += 1
            return web.Response(status=502)
        self.received.append(
            {
                "path": request.path,
                "auth": request.headers.get("Authorization"),
                **json.loads(await request.read()),
            }
        )
        return web.json_response({"id": len(self.received)}, status=201)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/repos/{owner}/{repo}/statuses/{sha}", self._status)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> FakeGitHub:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.mark.one_pass("the statuses are posted the same whichever database the master has")
@pytest.mark.parametrize(("method", "final"), [(ECHO, "success"), (FAIL, "failure")])
def test_statuses_pending_then_final_reach_the_api_in_order(
    fleet: Fleet, toolbox_env: dict[str, str], github: FakeGitHub, method: str, final: str
) -> None:
    """pending when the job starts, then success or failure; a 502 is retried, not lost."""
    (fleet.workdir / "hook-secret").write_text(SECRET)
    (fleet.workdir / "gh-token").write_text(TOKEN)
    config = fleet.workdir / "master.toml"
    params = 'params = { code = "INTERNAL", message = "boom" }\n' if method == FAIL else ""
    config.write_text(
        f'[[trigger]]\nname = "gh"\nforge = "github"\nsecret_file = "hook-secret"\n'
        f'method = "{method}"\nstatus_token_file = "gh-token"\n'
        f'api_url = "http://127.0.0.1:{github.port}"\n{params}'
    )
    http = free_port()
    master = fleet.master(
        "--http_port",
        str(http),
        "--config",
        str(config),
        "--public_url",
        "https://arko.example.com/",
    )
    fleet.slave(master, "--service", "toolbox_plugin:plugin", env=toolbox_env)
    body = _push()
    answer = requests.post(
        f"http://127.0.0.1:{http}/hooks/gh",
        data=body,
        headers={"Content-Type": "application/json", **_github(body)},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    wait_until(lambda: len(github.received) >= 2, 60, "two commit statuses")
    assert [s["state"] for s in github.received] == ["pending", final]
    assert github.refused == 1 and master.events("commit_status_failed")
    for status in github.received:
        assert status["path"] == f"/repos/octo/hello/statuses/{'0123abcd' * 5}"
        assert status["context"] == "arko/gh"
        assert status["target_url"] == f"https://arko.example.com/jobs/{job_id}"
        assert status["auth"] == f"Bearer {TOKEN}"
    assert TOKEN not in master.log_text()
