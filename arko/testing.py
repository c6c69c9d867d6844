"""Helpers to run real arko daemons as subprocesses: for tests, the demo and benchmarks.

Every daemon gets a free loopback port, JSON logs in a file, and is stopped by
its own PID. Waiting is always for a condition, bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Daemon:
    """One ``arko-master`` or ``arko-slave`` subprocess with its log file."""

    def __init__(
        self,
        kind: str,
        port: int,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        program: Sequence[str] = (),
    ) -> None:
        """``program`` replaces ``python -m arko.<kind>``, e.g. with the installed
        ``arko-slave`` script, whose import path is what a user really gets."""
        self.kind = kind
        self.credentials = credentials
        self.port = port
        self.address = f"{LOOPBACK}:{port}"
        self.args = [
            *(program or (sys.executable, "-m", f"arko.{kind}")),
            "--port",
            str(port),
            "--listen_host",
            LOOPBACK,
            "--log_format",
            "json",
            *args,
        ]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        """Launch the process (logs appended to ``log_path``)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
            )
        return self

    @property
    def pid(self) -> int:
        """The process id (the daemon must have been started)."""
        assert self.proc is not None, "daemon not started"
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        """Everything the daemon printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Parsed JSON log events, optionally only those called ``name``."""
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and (name is None or event.get("event") == name):
                    out.append(event)
        return out

    def wait_for_event(self, name: str, timeout: float = 15.0, count: int = 1) -> dict[str, Any]:
        """Wait until the log holds ``count`` events called ``name``; return the last."""

        def seen() -> dict[str, Any] | None:
            self._check_running()
            found = self.events(name)
            return found[count - 1] if len(found) >= count else None

        return wait_until(seen, timeout, f"{self.kind} log event {name!r}")

    def _check_running(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.kind} exited ({code}); its log:\n{self.log_text()[-4000:]}")

    def wait_serving(self, timeout: float = 15.0) -> Daemon:
        """Wait until the daemon's own health check answers SERVING."""
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                self._check_running()
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                except grpc.RpcError:
                    return False
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

            wait_until(serving, timeout, f"{self.kind} on {self.address} to serve")
        return self

    def channel(self) -> grpc.Channel:
        """A blocking channel to the daemon, over TLS when it was given credentials."""
        if self.credentials is None:
            return grpc.insecure_channel(self.address)
        return grpc.secure_channel(self.address, self.credentials)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this daemon's own PID."""
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; return the exit status."""
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, the crash a daemon cannot clean up after."""
        if self.proc is not None and self.alive():
            self.signal(signal.SIGKILL)
            self.proc.wait(10)


class Fleet:
    """Starts masters and slaves in one folder and stops all of them, by PID, at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.daemons: list[Daemon] = []

    def master(
        self,
        *args: str,
        port: int | None = None,
        db: Path | str | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> Daemon:
        """Start a master (database in the work folder unless ``db``, a file or URL, is given)."""
        port = port or free_port()
        db = db or self.workdir / "arko.db"
        daemon = self._add("master", port, ["--db", str(db), *args], env, credentials)
        return daemon.wait_serving() if wait else daemon

    def slave(
        self,
        master: Daemon | None,
        *args: str,
        port: int | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> Daemon:
        """Start a slave; with a master it registers there and this waits for it."""
        port = port or free_port()
        link = ["--master", master.address] if master else ["--mode", "rpc"]
        daemon = self._add("slave", port, [*link, *args], env, credentials)
        if wait:
            daemon.wait_serving()
            if master is not None:
                daemon.wait_for_event("registered")
        return daemon

    def _add(
        self,
        kind: str,
        port: int,
        args: list[str],
        env: dict[str, str] | None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> Daemon:
        log = self.workdir / f"{kind}-{port}-{len(self.daemons)}.log"
        daemon = Daemon(kind, port, args, log, env=env, cwd=self.workdir, credentials=credentials)
        daemon.start()
        self.daemons.append(daemon)
        return daemon

    def stop_all(self) -> None:
        """Stop every daemon this fleet started, newest first."""
        for daemon in reversed(self.daemons):
            daemon.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[Fleet]:
        """Context that stops every daemon on exit, whatever happened."""
        try:
            yield self
        finally:
            self.stop_all()
