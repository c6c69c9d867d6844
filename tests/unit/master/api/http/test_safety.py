"""The last-resort answer to a handler's bug, and the headers on every response."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from arko.master.api.http.safety import SECURITY_HEADERS, add_security_headers, last_resort


async def _broken(request: web.Request) -> web.Response:
    raise KeyError("internal detail")


async def _get(app: web.Application, path: str) -> tuple[int, str, dict[str, str]]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get(path)
        return response.status, await response.text(), dict(response.headers)


def _app() -> web.Application:
    app = web.Application(middlewares=[last_resort])
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/broken", _broken)
    return app


def test_a_handler_bug_is_a_bare_500_logged_with_its_traceback() -> None:
    """The client learns nothing of the bug; the master's log gets the traceback."""
    with capture_logs() as logs:
        status, text, _ = asyncio.run(_get(_app(), "/broken"))
    assert status == 500
    assert "internal detail" not in text and "KeyError" not in text
    assert "see its log" in text
    assert [e["event"] for e in logs] == ["http_request_failed"]
    assert logs[0]["exc_info"] is True


def test_every_response_carries_the_security_headers() -> None:
    """The router's own 404 gets them too, not only the handlers' answers."""
    status, _, headers = asyncio.run(_get(_app(), "/nowhere"))
    assert status == 404
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
