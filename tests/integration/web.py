"""Helpers for the HTTP tests: a master serving HTTP, a slave, and an SSE reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from arko.testing import Daemon, Fleet, free_port, wait_until


@dataclass
class Web:
    """A master with ``--http_port`` and the base URL of its HTTP server."""

    master: Daemon
    url: str
    session: requests.Session

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.url}{path}", timeout=60, **kwargs)

    def wait_job(self, job_id: str, state: str) -> dict[str, Any]:
        """Poll the job until it reaches ``state`` (bounded)."""

        def reached() -> dict[str, Any] | None:
            job = self.get(f"/api/v1/jobs/{job_id}").json()
            return job if job["state"] == state else None

        return wait_until(reached, 30, f"job {job_id} to be {state}")


def start_web(
    fleet: Fleet,
    *master_args: str,
    env: dict[str, str] | None = None,
    slave: bool = True,
    scheme: str = "http",
) -> Web:
    """A master serving HTTP on a free port, with an example slave (no Run delay)."""
    port = free_port()
    master = fleet.master("--http_port", str(port), *master_args, env=env)
    master.wait_for_event("http_started")
    if slave:
        fleet.slave(master, "--run_delay", "0")
    return Web(master, f"{scheme}://127.0.0.1:{port}", requests.Session())


def sse(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Parse a ``text/event-stream`` response into its events' JSON data, as they come."""
    data: list[str] = []
    for raw in response.iter_lines(decode_unicode=True):
        line = raw or ""
        if not line:
            if data:
                yield json.loads("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
