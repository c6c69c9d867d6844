"""The bench's own processes, managed the way ``arko.testing`` manages daemons.

``arko.testing.Daemon`` already gives a subprocess a log file, a PID-only
stop (SIGTERM, then SIGKILL) and log-event waits; ``Fleet`` stops everything it
holds on exit. The bench reuses both for processes that are not arko daemons
(Redis, the Celery worker, fleet servers, the naive relay, the load generator)
by swapping only the command line, so every process the run starts is stopped
by its own PID, in one place, whatever happens.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import redis

from arko.testing import LOOPBACK, Daemon, Fleet, free_port, wait_until
from bench.fleet_server import READY_EVENT

REPO = Path(__file__).resolve().parent.parent
# Dead ports are taken below the kernel's ephemeral range, so no port that
# free_port() or an outgoing connection gets can turn a dead address live.
DEAD_PORT_RANGE = (10000, 32000)


class Process(Daemon):
    """Any command, run and stopped like an arko daemon."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        port: int = 0,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(name, port, [], log_path, env=env, cwd=cwd)
        self.args = list(command)


def bench_env() -> dict[str, str]:
    """Environment for bench processes: ``bench`` importable from any working folder."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{path}{os.pathsep}{REPO}" if path else str(REPO)}


def export_arko(ref: str, dest: Path) -> Path:
    """Write ``arko/`` as committed at ``ref`` under ``dest``; return ``dest``.

    Others edit the working tree while benchmarks run; measuring a commit
    makes a run reproducible and says exactly which code the figures belong to.
    """
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "arko"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def start(
    fleet: Fleet,
    name: str,
    command: Sequence[str],
    port: int = 0,
    env: dict[str, str] | None = None,
) -> Process:
    """Start ``command`` as a process of ``fleet`` (so ``fleet.stop_all`` stops it)."""
    log = fleet.workdir / f"{name}-{port}-{len(fleet.daemons)}.log"
    proc = Process(
        name, command, log, port=port, env={**bench_env(), **(env or {})}, cwd=fleet.workdir
    )
    fleet.daemons.append(proc.start())
    return proc


def start_redis(fleet: Fleet) -> tuple[Process, str]:
    """A private Redis on a free loopback port, no persistence; returns it and its URL."""
    port = free_port()
    proc = start(
        fleet,
        "redis",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        port=port,
    )
    client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=1)

    def answers() -> bool:
        if not proc.alive():
            raise RuntimeError(f"redis-server exited:\n{proc.log_text()[-2000:]}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers, 15, "redis-server to answer PING")
    finally:
        client.close()
    return proc, f"redis://{LOOPBACK}:{port}"


def start_celery_worker(fleet: Fleet, redis_url: str) -> Process:
    """One Celery worker process (solo pool: the task runs in the worker itself, like a slave)."""
    proc = start(
        fleet,
        "celery",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_app",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            "bench@localhost",
        ],
        env={"BENCH_REDIS_URL": redis_url},
    )

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"celery worker exited:\n{proc.log_text()[-3000:]}")
        return " ready." in proc.log_text()

    wait_until(ready, 60, "the Celery worker to be ready")
    return proc


def start_fleet_server(fleet: Fleet, ports: int) -> tuple[Process, list[int]]:
    """A process serving ``ports`` slave addresses; returns it and the ports."""
    proc = start(
        fleet, "fleet", [sys.executable, "-m", "bench.fleet_server", "--ports", str(ports)]
    )
    event = proc.wait_for_event(READY_EVENT, timeout=60)
    return proc, [int(p) for p in event["ports"]]


def start_naive_relay(fleet: Fleet, slave: str) -> Process:
    """The per-job-reflection relay in front of ``slave``."""
    return _start_relay(fleet, "naive", slave)


def start_bare_relay(fleet: Fleet, slave: str) -> Process:
    """The bare generated-stub relay (the one-hop floor) in front of ``slave``."""
    return _start_relay(fleet, "relay", slave)


def start_stream_relay(fleet: Fleet, slave: str) -> Process:
    """The bytes-only streaming relay (the floor of a streamed job) in front of ``slave``."""
    return _start_relay(fleet, "stream_relay", slave)


def _start_relay(fleet: Fleet, module: str, slave: str) -> Process:
    port = free_port()
    proc = start(
        fleet,
        module,
        [sys.executable, "-m", f"bench.{module}", "--port", str(port), "--slave", slave],
        port=port,
    )
    proc.wait_serving()
    return proc


def dead_ports(count: int) -> list[int]:
    """``count`` loopback ports nobody listens on (connections to them are refused)."""
    listening = {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr
    }
    low, high = DEAD_PORT_RANGE
    ports = [p for p in range(low, high) if p not in listening]
    if len(ports) < count:
        raise RuntimeError(f"only {len(ports)} unused ports in {low}-{high}, {count} needed")
    return ports[:count]


class LoadGen(Process):
    """The load-generator process (``bench.loadgen``): JSON commands in, JSON results out."""

    def __init__(self, log_path: Path, cwd: Path) -> None:
        super().__init__(
            "loadgen",
            [sys.executable, "-m", "bench.loadgen"],
            log_path,
            env=bench_env(),
            cwd=cwd,
        )
        self._buffer = b""

    def start(self) -> LoadGen:
        """Launch with pipes for commands and replies; stderr goes to the log."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                cwd=self.cwd,
            )
        return self

    def run(self, op: str, timeout: float, **args: Any) -> dict[str, Any]:
        """Send one command and wait at most ``timeout`` seconds for its result.

        Raises:
            RuntimeError: the load generator failed the command or died.
            TimeoutError: no answer in time.
        """
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self.proc.stdin.flush()
        reply = json.loads(self._read_line(timeout))
        if not reply["ok"]:
            raise RuntimeError(f"load generator: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    def _read_line(self, timeout: float) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"load generator gave no answer within {timeout:g}s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"load generator exited:\n{self.log_text()[-3000:]}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def stop(self, timeout: float = 15.0) -> int | None:
        """Ask it to quit (closing stdin), then fall back to the PID-based stop."""
        if self.proc is not None and self.proc.stdin is not None and self.alive():
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        return super().stop(timeout)


def start_loadgen(fleet: Fleet) -> LoadGen:
    """Start the load generator as a process of ``fleet``."""
    gen = LoadGen(fleet.workdir / f"loadgen-{len(fleet.daemons)}.log", fleet.workdir)
    fleet.daemons.append(gen.start())
    return gen
