"""TLS, mutual TLS, join and client tokens, master-only slaves, secrets in logs and files."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Daemon, Fleet
from tests.pki import CertificateAuthority, Issued

ROOT = Path(__file__).resolve().parents[2]
REQUEST = '{"method": "MyPipeline.Run", "params":{"param":"one", "password": "parola"}}'
EXPECTED = (
    "MyPipeline.Run done: Job finished with status OK: "
    '{\n  "message": "job execution done with: one parola"\n}'
)


@dataclass
class Pki:
    """A CA with certificates for a master, a slave and a CI client; and a rogue CA."""

    ca: CertificateAuthority
    master: Issued
    slave: Issued
    client: Issued
    rogue: CertificateAuthority

    def grpcurl_identity(self, who: Issued) -> list[str]:
        """grpcurl flags trusting our CA and presenting ``who``'s certificate."""
        return ["-cacert", str(self.ca.cert_path), "-cert", str(who.cert), "-key", str(who.key)]

    def credentials(self, who: Issued) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.cert_path.read_bytes(),
            private_key=who.key.read_bytes(),
            certificate_chain=who.cert.read_bytes(),
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """Throw-away certificates, made fresh for each test."""
    folder = tmp_path / "pki"
    folder.mkdir()
    ca = CertificateAuthority(folder)
    rogue_folder = tmp_path / "rogue"
    rogue_folder.mkdir()
    return Pki(
        ca=ca,
        master=ca.issue("arko-master"),
        slave=ca.issue("slave-1"),
        client=ca.issue("ci-client", client=True),
        rogue=CertificateAuthority(rogue_folder, name="rogue-ca"),
    )


def _mtls_fleet(fleet: Fleet, pki: Pki, *slave_args: str) -> tuple[Daemon, Daemon]:
    master = fleet.master(*pki.ca.daemon_flags(pki.master), credentials=pki.credentials(pki.client))
    slave = fleet.slave(
        master,
        *pki.ca.daemon_flags(pki.slave),
        "--run_delay",
        "0",
        *slave_args,
        credentials=pki.credentials(pki.client),
    )
    return master, slave


def _grpcurl(grpcurl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [grpcurl, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_acceptance_call_over_mutual_tls(fleet: Fleet, pki: Pki, grpcurl: str) -> None:
    """Client→master, slave→master and master→slave all on mTLS; grpcurl gets the answer."""
    master, _ = _mtls_fleet(fleet, pki)
    out = _grpcurl(
        grpcurl,
        *pki.grpcurl_identity(pki.client),
        "-d",
        REQUEST,
        master.address,
        "Execution/ExecuteJob",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["message"] == EXPECTED
    assert master.events("master_started")[0]["tls"] == "mutual"


@pytest.mark.parametrize(
    "case", ["wrong_ca", "no_client_cert", "expired", "self_signed", "other_ca"]
)
def test_bad_tls_clients_are_refused(fleet: Fleet, pki: Pki, grpcurl: str, case: str) -> None:
    """A client that cannot prove itself, or trusts the wrong CA, gets nothing."""
    master, _ = _mtls_fleet(fleet, pki)
    ca, cert = str(pki.ca.cert_path), pki.client
    if case == "wrong_ca":
        ca = str(pki.rogue.cert_path)
    elif case == "expired":
        cert = pki.ca.issue("late-client", client=True, expired=True)
    elif case == "self_signed":
        cert = Issued(cert=pki.rogue.cert_path, key=pki.rogue.key_path)
    elif case == "other_ca":
        cert = pki.rogue.issue("stranger", client=True)
    identity = [] if case == "no_client_cert" else ["-cert", str(cert.cert), "-key", str(cert.key)]
    out = _grpcurl(
        grpcurl, "-cacert", ca, *identity, "-d", REQUEST, master.address, "Execution/ExecuteJob"
    )
    assert out.returncode != 0
    assert "job execution done" not in out.stdout


def test_plaintext_client_is_refused_by_a_tls_master(fleet: Fleet, pki: Pki, grpcurl: str) -> None:
    """A master on TLS does not answer plaintext calls."""
    master, _ = _mtls_fleet(fleet, pki)
    out = _grpcurl(grpcurl, "-plaintext", "-d", REQUEST, master.address, "Execution/ExecuteJob")
    assert out.returncode != 0


def test_mtls_slave_refuses_a_valid_client_that_is_not_the_master(
    fleet: Fleet, pki: Pki, grpcurl: str
) -> None:
    """A CA-signed client that is not the master is refused by the slave; health stays open."""
    master, slave = _mtls_fleet(fleet, pki)
    identity = pki.grpcurl_identity(pki.client)
    direct = _grpcurl(
        grpcurl,
        *identity,
        "-proto",
        "protos/pipeline.proto",
        "-d",
        '{"param": "x"}',
        slave.address,
        "MyPipeline/DryRun",
    )
    assert direct.returncode != 0
    assert "Unauthenticated" in direct.stderr
    assert "only takes calls from its master" in direct.stderr
    with slave.channel() as channel:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    through = _grpcurl(grpcurl, *identity, "-d", REQUEST, master.address, "Execution/ExecuteJob")
    assert through.returncode == 0, through.stderr


def test_direct_call_to_a_protected_slave_is_refused(fleet: Fleet, grpcurl: str) -> None:
    """Plaintext fleet: grpcurl straight to the slave is refused; through the master it works."""
    master = fleet.master()
    slave = fleet.slave(master, "--run_delay", "0")
    direct = _grpcurl(
        grpcurl,
        "-plaintext",
        "-proto",
        "protos/pipeline.proto",
        "-d",
        '{"param": "one", "password": "parola"}',
        slave.address,
        "MyPipeline/Run",
    )
    assert direct.returncode != 0
    assert "Unauthenticated" in direct.stderr
    through = _grpcurl(grpcurl, "-plaintext", "-d", REQUEST, master.address, "Execution/ExecuteJob")
    assert through.returncode == 0, through.stderr
    assert json.loads(through.stdout)["message"] == EXPECTED


def test_unprotected_slave_takes_direct_calls(fleet: Fleet, grpcurl: str) -> None:
    """--no-protect opens a registered slave to anyone (an explicit choice)."""
    master = fleet.master()
    slave = fleet.slave(master, "--run_delay", "0", "--no-protect")
    direct = _grpcurl(
        grpcurl,
        "-plaintext",
        "-proto",
        "protos/pipeline.proto",
        "-d",
        '{"param": "x"}',
        slave.address,
        "MyPipeline/DryRun",
    )
    assert direct.returncode == 0, direct.stderr


JOIN = "join-Zq81-secret-token"


@pytest.mark.parametrize(
    ("env", "accepted"),
    [
        ({}, False),
        ({"ARKO_SLAVE_JOIN_TOKEN": "wrong-token-77"}, False),
        ({"ARKO_SLAVE_JOIN_TOKEN": JOIN}, True),
    ],
)
def test_join_token(fleet: Fleet, env: dict[str, str], accepted: bool) -> None:
    """With a join token, only slaves presenting it are registered; others exit 1."""
    master = fleet.master(env={"ARKO_MASTER_JOIN_TOKEN": JOIN})
    slave = fleet.slave(master, env=env, wait=False)
    if accepted:
        slave.wait_for_event("registered")
    else:
        assert slave.proc is not None and slave.proc.wait(20) == 1
        refused = slave.events("register_refused")
        assert refused and refused[0]["code"] == "UNAUTHENTICATED"
        assert master.events("register_refused")
    for daemon in (master, slave):
        assert JOIN not in daemon.log_text()
        assert "wrong-token-77" not in daemon.log_text()


def test_join_token_from_a_file(fleet: Fleet, tmp_path: Path) -> None:
    """--join_token_file works on both daemons."""
    token = tmp_path / "join.token"
    token.write_text(JOIN + "\n")
    master = fleet.master("--join_token_file", str(token))
    fleet.slave(master, "--join_token_file", str(token))
    assert JOIN not in master.log_text()


@pytest.mark.parametrize("module", ["arko.master", "arko.slave"])
def test_tokens_are_not_taken_from_argv(module: str) -> None:
    """A token on the command line (visible in ps) is refused outright."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--join_token", "x"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode != 0
    assert "--join_token is not taken on the command line" in out.stderr


CLIENT = "client-Hh7-bearer"


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        ((), False),
        ((("authorization", "Bearer nope"),), False),
        ((("authorization", f"Basic {CLIENT}"),), False),
        ((("authorization", f"Bearer {CLIENT}"),), True),
    ],
)
def test_client_token_guards_execution(fleet: Fleet, metadata: tuple, ok: bool) -> None:
    """Execution needs the bearer token; without it, UNAUTHENTICATED and nothing runs."""
    master = fleet.master(env={"ARKO_MASTER_CLIENT_TOKEN": CLIENT})
    slave = fleet.slave(master, "--run_delay", "0")
    with grpc.insecure_channel(master.address) as channel:
        stub = execution_pb2_grpc.ExecutionStub(channel)
        request = execution_pb2.JobParams(method="MyPipeline.Run", params={"param": "t"})
        if ok:
            assert "done" in stub.ExecuteJob(request, metadata=metadata, timeout=10).message
        else:
            with pytest.raises(grpc.RpcError) as err:
                stub.ExecuteJob(request, metadata=metadata, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert not slave.events("pipeline_run")
    assert CLIENT not in master.log_text()


def test_client_token_with_grpcurl(fleet: Fleet, grpcurl: str) -> None:
    """grpcurl passes the token with -H; reflection and health stay open."""
    master = fleet.master(env={"ARKO_MASTER_CLIENT_TOKEN": CLIENT})
    fleet.slave(master, "--run_delay", "0")
    out = _grpcurl(
        grpcurl,
        "-plaintext",
        "-H",
        f"authorization: Bearer {CLIENT}",
        "-d",
        REQUEST,
        master.address,
        "Execution/ExecuteJob",
    )
    assert out.returncode == 0, out.stderr
    assert _grpcurl(grpcurl, "-plaintext", master.address, "list").returncode == 0


def test_secrets_never_reach_logs_or_the_database(fleet: Fleet, client_for) -> None:
    """A known secret value is nowhere in the logs, the database or the journal afterwards."""
    secret = "pw-9f8e7d-NEVER-LOGGED"
    master = fleet.master("--log_level", "debug")
    slave = fleet.slave(master, "--run_delay", "0", "--log_level", "debug")
    client = client_for(master)
    reply = client.run("MyPipeline.Run", param="visible", password=secret)
    assert secret in reply  # the example echoes it to its caller, by its own choice
    with pytest.raises(grpc.RpcError):
        client.run("MyPipeline.Run", param="visible", api_key=secret)
    with pytest.raises(grpc.RpcError):
        client.run("No.Such", secret_token=secret)
    assert master.stop() == 0 and slave.stop() == 0
    files = [p for p in fleet.workdir.rglob("*") if p.is_file()]
    assert any(p.name == "arko.db" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"secret found in {path.name}"
