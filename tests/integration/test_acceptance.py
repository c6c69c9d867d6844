"""The original README's scenario through the real grpcurl binary."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from arko.testing import Fleet

ROOT = Path(__file__).resolve().parents[2]
REQUEST = '{"method": "MyPipeline.Run", "params":{"param":"one", "password": "parola"}}'
EXPECTED = (
    "MyPipeline.Run done: Job finished with status OK: "
    '{\n  "message": "job execution done with: one parola"\n}'
)


def _assert_answer(stdout: str) -> None:
    """The original's message, plus the job id arko adds.

    grpcurl names the field jobId from a proto file and job_id through
    reflection (Python's reflection sends descriptors without json_name).
    """
    answer = json.loads(stdout)
    assert answer.pop("message") == EXPECTED
    (job_id,) = (answer.pop(k) for k in ("jobId", "job_id") if k in answer)
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert answer == {}


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
    _assert_answer(out.stdout)


def test_acceptance_call_through_reflection(fleet: Fleet, grpcurl: str) -> None:
    """Without -proto, grpcurl learns Execution from the master's reflection."""
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0")
    out = _grpcurl(grpcurl, "-d", REQUEST, "-plaintext", master.address, "Execution/ExecuteJob")
    assert out.returncode == 0, out.stderr
    _assert_answer(out.stdout)


def test_both_daemons_serve_health_and_reflection(fleet: Fleet, grpcurl: str) -> None:
    """grpc.health.v1 answers SERVING on both; reflection lists health too.

    A registered slave shows strangers only health and reflection (see
    test_first_hour), so its pipeline service is checked on an rpc-mode slave.
    """
    master = fleet.master()
    registered = fleet.slave(master)
    open_slave = fleet.slave(None)
    for daemon, service in (
        (master, "Execution"),
        (open_slave, "MyPipeline"),
        (registered, "grpc.reflection.v1alpha.ServerReflection"),
    ):
        health = _grpcurl(grpcurl, "-plaintext", daemon.address, "grpc.health.v1.Health/Check")
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout) == {"status": "SERVING"}
        listing = _grpcurl(grpcurl, "-plaintext", daemon.address, "list").stdout.split()
        assert service in listing
        assert "grpc.health.v1.Health" in listing
