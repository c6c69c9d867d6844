"""Issue 8, running a fleet: the manual's certificate recipe, the auth the master
says it enforces, and slaves forgotten after staying down too long."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from arko.testing import Fleet
from tests import readme
from tests.pki import CertificateAuthority


def _security_block(containing: str) -> str:
    """The ``sh`` code block of docs/security.md that contains ``containing``."""
    found = [b for b in readme.blocks(readme.read("docs/security.md")) if containing in b]
    assert found, f"docs/security.md has no sh block with {containing!r}"
    return found[0]


def _tls_flags(folder: Path, name: str) -> list[str]:
    return [
        "--tls",
        "--cert_file",
        str(folder / f"{name}.pem"),
        "--key_file",
        str(folder / f"{name}.key"),
        "--ca_file",
        str(folder / "ca.pem"),
    ]


def test_manual_certificate_recipe_makes_a_working_mutual_tls_fleet(
    fleet: Fleet, grpcurl: str, tmp_path: Path
) -> None:
    """The manual's openssl commands, run as written, give certificates that work.

    The slave only obeys a caller named arko-master, so the job's success also
    proves the master's certificate carries that name.
    """
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    certs = tmp_path / "certs"
    certs.mkdir()
    recipe = _security_block("openssl req -x509")
    made = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe],
        cwd=certs,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    client = ["-cacert", "ca.pem", "-cert", "ci-client.pem", "-key", "ci-client.key"]
    creds = grpc.ssl_channel_credentials(
        *((certs / name).read_bytes() for name in ("ca.pem", "ci-client.key", "ci-client.pem"))
    )
    master = fleet.master(*_tls_flags(certs, "arko-master"), credentials=creds)
    fleet.slave(master, *_tls_flags(certs, "slave-1"), "--run_delay", "0", credentials=creds)
    job = '{"method": "MyPipeline.Run", "params": {"param": "one"}}'
    ran = subprocess.run(
        [grpcurl, *client, "-d", job, master.address, "Execution/ExecuteJob"],
        cwd=certs,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "job execution done with: one" in json.loads(ran.stdout)["message"]


def test_master_logs_the_auth_it_enforces(fleet: Fleet, tmp_path: Path) -> None:
    """master_started names what callers must present; mutual TLS counts as a check."""
    plain = fleet.master(db=fleet.database("plain"))
    started = plain.events("master_started")[0]
    assert (started["registration_requires"], started["execution_requires"]) == ("none", "none")

    ca = CertificateAuthority(tmp_path)
    client = ca.issue("ci-client", client=True)
    token = tmp_path / "client.token"
    token.write_text("a-client-token-of-the-test\n")
    mutual = fleet.master(
        *ca.daemon_flags(ca.issue("arko-master")),
        "--client_token_file",
        str(token),
        db=fleet.database("mutual"),
        credentials=grpc.ssl_channel_credentials(
            ca.cert_path.read_bytes(), client.key.read_bytes(), client.cert.read_bytes()
        ),
    )
    started = mutual.events("master_started")[0]
    assert started["tls"] == "mutual"
    assert started["registration_requires"] == "client certificate"
    assert started["execution_requires"] == "client certificate + bearer token"


def test_a_slave_down_longer_than_forget_after_is_forgotten(fleet: Fleet) -> None:
    """The master drops a slave down past --forget_after, logs it, and forgets it for good."""
    master = fleet.master("--forget_after", "0.5", "--ping_interval", "0.2")
    kept = fleet.slave(master)
    gone = fleet.slave(master)
    assert gone.stop() == 0
    forgotten = master.wait_for_event("slave_forgotten")
    assert forgotten["slave"] == gone.address
    assert forgotten["forget_after"] == 0.5
    assert fleet.query("SELECT host, port FROM slave") == [("127.0.0.1", kept.port)]
    assert master.stop() == 0
    again = fleet.master()
    assert again.wait_for_event("slaves_loaded")["count"] == 1
