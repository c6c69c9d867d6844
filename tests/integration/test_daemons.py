"""Each daemon flag and start-up failure, on the real command-line programs."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from arko.gen import pipeline_pb2, pipeline_pb2_grpc, register_pb2, register_pb2_grpc
from arko.testing import Daemon, Fleet, free_port
from tests.pki import CertificateAuthority

MASTER_FLAGS = [
    "--port",
    "--db",
    "--tls",
    "--cert_file",
    "--key_file",
    "--ping_interval",
    "--ping_timeout",
    "--connect_timeout",
    "--job_timeout",
    "--grace",
    "--config",
]
SLAVE_FLAGS = [
    "--port",
    "--master",
    "--mode",
    "--engine",
    "--tls",
    "--cert_file",
    "--key_file",
    "--advertise_host",
    "--advertise_port",
    "--service",
    "--run_delay",
    "--config",
]


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    ("module", "flags"), [("arko.master", MASTER_FLAGS), ("arko.slave", SLAVE_FLAGS)]
)
def test_help_lists_every_flag(module: str, flags: list[str]) -> None:
    """--help exits 0 and documents every flag."""
    out = _run(module, "--help")
    assert out.returncode == 0, out.stderr
    for flag in flags:
        assert flag in out.stdout


def test_taken_port_fails_with_a_clear_error(fleet: Fleet) -> None:
    """A second master on a port in use exits non-zero saying so."""
    master = fleet.master()
    out = _run(
        "arko.master",
        "--port",
        str(master.port),
        "--listen_host",
        "127.0.0.1",
        "--db",
        str(fleet.database("other")),
    )
    assert out.returncode != 0
    assert f"cannot listen on 127.0.0.1:{master.port}" in out.stdout + out.stderr


def test_delegate_mode_is_refused() -> None:
    """--mode delegate is not supported yet, says so and exits non-zero."""
    out = _run("arko.slave", "--mode", "delegate", "--port", str(free_port()))
    assert out.returncode != 0
    assert "delegate is not supported yet" in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--engine", "docker"], "engine"),
        (["--mode", "bogus"], "mode"),
        (["--port", "x"], "port"),
        (["--service", "nope"], "module:attr"),
        (["--service", "no_such_module:plugin"], "no_such_module"),
    ],
)
def test_bad_slave_flags_fail_clearly(args: list[str], needle: str) -> None:
    """Invalid flag values exit non-zero with a message naming the setting."""
    out = _run("arko.slave", "--mode", "rpc", "--port", str(free_port()), *args)
    assert out.returncode != 0
    assert needle in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_rpc_mode_serves_without_a_master(fleet: Fleet) -> None:
    """--mode rpc serves MyPipeline directly and never tries to register."""
    slave = fleet.slave(None, "--run_delay", "0", "--engine", "inprocess")
    with grpc.insecure_channel(slave.address) as channel:
        reply = pipeline_pb2_grpc.MyPipelineStub(channel).Run(
            pipeline_pb2.MyPipelineConfig(param="direct", password="pw"), timeout=10
        )
    assert reply.message == "job execution done with: direct pw"
    assert not slave.events("register_retry") and not slave.events("registered")


def test_master_flag_and_advertised_address(fleet: Fleet) -> None:
    """--master picks the master; --advertise_host/--advertise_port are what it stores.

    The master calls the advertised address back before it stores it, so it
    must reach the slave (through a port forward, say); one that does not is
    refused, naming it.
    """
    master = fleet.master()
    port = free_port()
    fleet.slave(master, "--advertise_host", "localhost", "--advertise_port", str(port), port=port)
    assert fleet.query("SELECT host, port FROM slave") == [("localhost", port)]
    elsewhere = free_port()
    lost = fleet.slave(master, "--advertise_port", str(elsewhere), wait=False)
    refused = lost.wait_for_event("register_refused")
    assert f":{elsewhere} did not confirm this registration" in refused["reason"]
    assert fleet.query("SELECT host, port FROM slave") == [("localhost", port)]


def test_slave_waits_for_a_late_master(fleet: Fleet) -> None:
    """A slave started before its master retries until it is registered."""
    port = free_port()
    slave = fleet.slave(Daemon("master", port, [], fleet.workdir / "none.log"), wait=False)
    slave.wait_for_event("register_retry")
    fleet.master(port=port)
    slave.wait_for_event("registered", timeout=20)


class _RecordingHealth(health.HealthServicer):  # type: ignore[misc]
    """A health service that notes the deadline each Check arrives with."""

    def __init__(self) -> None:
        super().__init__()
        self.deadlines: list[float | None] = []

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.deadlines.append(context.time_remaining())
        return super().Check(request, context)


def test_db_flag_env_and_config_file(fleet: Fleet, tmp_path: Path) -> None:
    """--db is honoured (the slave is stored there); a --config TOML file and ARKO_MASTER_*
    set values too.

    ping_interval comes from the file: a second sweep within seconds, not
    after the default 30. ping_timeout comes from the environment: it is the
    deadline of the master's health checks, which a stand-in slave records
    (the default would be 5 s).
    """
    config = tmp_path / "master.toml"
    config.write_text('ping_interval = 0.25\nlog_level = "debug"\n')
    db = fleet.database("chosen")
    recorder = _RecordingHealth()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        master = fleet.master(
            "--config", str(config), db=db, env={"ARKO_MASTER_PING_TIMEOUT": "0.5"}
        )
        with grpc.insecure_channel(master.address) as channel:
            register_pb2_grpc.RegisterStub(channel).RegisterNewSlave(
                register_pb2.SlaveConfig(host="127.0.0.1", port=port), timeout=10
            )
        sweeps = len(master.events("ping_sweep_done"))
        master.wait_for_event("ping_sweep_done", count=sweeps + 2, timeout=10)
    finally:
        server.stop(None)
    # The registration's check, and at least one sweep's: of the two sweeps
    # waited for, the first may have begun before the registration.
    assert len(recorder.deadlines) >= 2
    # At most 0.5 s, but for the clocks: the server turns the sent timeout
    # into a wall-clock deadline, and reads 0.50047 s left now and then. The
    # default would be 5 s, so 0.55 still tells the two apart.
    assert all(d is not None and d <= 0.55 for d in recorder.deadlines), recorder.deadlines
    assert fleet.query("SELECT port FROM slave", db=db) == [(port,)]


def test_tls_flags_serve_tls(fleet: Fleet, tmp_path: Path) -> None:
    """--tls --cert_file --key_file make the master serve TLS only."""
    ca = CertificateAuthority(tmp_path)
    server = ca.issue("master")
    master = fleet.master(
        "--tls", "--cert_file", str(server.cert), "--key_file", str(server.key), wait=False
    )
    master.wait_for_event("master_started")
    creds = grpc.ssl_channel_credentials(root_certificates=ca.cert_path.read_bytes())
    with grpc.secure_channel(master.address, creds) as channel:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(master.address) as plain, pytest.raises(grpc.RpcError):
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=3)


def test_sigterm_stops_both_daemons_cleanly(fleet: Fleet) -> None:
    """SIGTERM makes master and slave exit 0."""
    master = fleet.master()
    slave = fleet.slave(master)
    assert slave.stop() == 0
    assert master.stop() == 0
