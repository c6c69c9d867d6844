"""The original README's scenario through the real grpcurl binary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from arko.testing import Fleet

ROOT = Path(__file__).resolve().parents[2]
REQUEST = '{"method": "MyPipeline.Run", "params":{"param":"one", "password": "parola"}}'
EXPECTED = (
    "MyPipeline.Run done: Job finished with status OK: "
    '{\n  "message": "job execution done with: one parola"\n}'
)


def _grpcurl(grpcurl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [grpcurl, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_acceptance_call_with_proto_file(fleet: Fleet, grpcurl: str) -> None:
    """grpcurl with -proto protos/execution.proto gets the original's answer."""
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0.2")
    out = _grpcurl(
        grpcurl,
        "-d",
        REQUEST,
        "-plaintext",
        "-proto",
        "protos/execution.proto",
        master.address,
        "Execution/ExecuteJob",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"message": EXPECTED}


def test_acceptance_call_through_reflection(fleet: Fleet, grpcurl: str) -> None:
    """Without -proto, grpcurl learns Execution from the master's reflection."""
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0")
    out = _grpcurl(grpcurl, "-d", REQUEST, "-plaintext", master.address, "Execution/ExecuteJob")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"message": EXPECTED}


def test_both_daemons_serve_health_and_reflection(fleet: Fleet, grpcurl: str) -> None:
    """grpc.health.v1 answers SERVING on master and slave, found through reflection."""
    master = fleet.master()
    slave = fleet.slave(master)
    for daemon, service in ((master, "Execution"), (slave, "MyPipeline")):
        health = _grpcurl(grpcurl, "-plaintext", daemon.address, "grpc.health.v1.Health/Check")
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout) == {"status": "SERVING"}
        listing = _grpcurl(grpcurl, "-plaintext", daemon.address, "list").stdout.split()
        assert service in listing
        assert "grpc.health.v1.Health" in listing
