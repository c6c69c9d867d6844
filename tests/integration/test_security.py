"""TLS, mutual TLS, join and client tokens, master-only slaves, secrets in logs and files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from arko.common.auth import SECRET_HEADER
from arko.gen import execution_pb2, execution_pb2_grpc
from arko.master.slaves.discovery import discover
from arko.testing import Daemon, Fleet, is_postgres_url, wait_until
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
    # grpc logs why it refused a TLS handshake; the refusal tests read that.
    master = fleet.master(
        *pki.ca.daemon_flags(pki.master),
        credentials=pki.credentials(pki.client),
        env={"GRPC_VERBOSITY": "INFO"},
    )
    slave = fleet.slave(
        master,
        *pki.ca.daemon_flags(pki.slave),
        "--run_delay",
        "0",
        *slave_args,
        credentials=pki.credentials(pki.client),
    )
    return master, slave


def _handshake_refused(master: Daemon, reason: str) -> None:
    """Wait until the master's log says it failed a TLS handshake for ``reason``."""
    wait_until(
        lambda: any(
            "Handshake failed" in line and reason in line for line in master.log_text().splitlines()
        ),
        timeout=10,
        what=f"the master to refuse a TLS handshake: {reason}",
    )


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


# Each bad client, and the TLS failure that must refuse it: the client's
# own (it distrusts the master) or, for certificates the master refuses, the
# master's reason, which the client sees only as a closed socket.
BAD_TLS_CLIENTS = {
    "wrong_ca": "x509: certificate signed by unknown authority",
    "no_client_cert": "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    "expired": "certificate has expired",
    "self_signed": "self signed certificate",
    "other_ca": "unable to get local issuer certificate",
}


@pytest.mark.parametrize("case", list(BAD_TLS_CLIENTS))
def test_bad_tls_clients_are_refused(fleet: Fleet, pki: Pki, grpcurl: str, case: str) -> None:
    """A client that cannot prove itself, or trusts the wrong CA, fails the TLS handshake."""
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
    # Refused while connecting, not by an RPC answer.
    assert "Failed to dial target host" in out.stderr, out.stderr
    if case == "wrong_ca":
        assert BAD_TLS_CLIENTS[case] in out.stderr
    else:
        _handshake_refused(master, BAD_TLS_CLIENTS[case])


def test_plaintext_client_is_refused_by_a_tls_master(fleet: Fleet, pki: Pki, grpcurl: str) -> None:
    """A master on TLS does not answer plaintext calls: the handshake fails."""
    master, _ = _mtls_fleet(fleet, pki)
    out = _grpcurl(grpcurl, "-plaintext", "-d", REQUEST, master.address, "Execution/ExecuteJob")
    assert out.returncode != 0
    assert "Failed to dial target host" in out.stderr, out.stderr
    _handshake_refused(master, "WRONG_VERSION_NUMBER")


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


def test_a_master_without_the_secret_is_refused_plainly_on_reflection(fleet: Fleet) -> None:
    """A restarted master asking a protected slave's reflection is told UNAUTHENTICATED.

    Always, never INTERNAL: the slave reads the first request before refusing,
    since ending the stream during the client's write garbles the status for
    an asyncio client (grpc/grpc#36066). Before that, about 2 in 100 fresh
    connections saw INTERNAL, and the master took the slave for broken.
    """
    master = fleet.master()
    slave = fleet.slave(master, "--run_delay", "0")

    async def ask(times: int) -> Counter[str]:
        codes: Counter[str] = Counter()
        for _ in range(times):
            async with grpc.aio.insecure_channel(slave.address) as channel:
                try:
                    await discover(channel, 10, None, ((SECRET_HEADER, ""),))
                except grpc.aio.AioRpcError as exc:
                    codes[f"{exc.code().name}: {exc.details()}"] += 1
                else:
                    codes["answered"] += 1
        return codes

    refusal = (
        "UNAUTHENTICATED: this slave only takes calls from its master: "
        "a master without this slave's call secret (it gets it at registration)"
    )
    assert asyncio.run(ask(300)) == {refusal: 300}


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


@pytest.mark.parametrize(
    ("slave_token", "accepted"), [(None, False), ("wrong-token-77", False), (JOIN, True)]
)
def test_join_token_from_a_file(
    fleet: Fleet, tmp_path: Path, slave_token: str | None, accepted: bool
) -> None:
    """--join_token_file is the token the master demands and the one a slave presents."""
    master_token = tmp_path / "master.token"
    master_token.write_text(JOIN + "\n")
    master = fleet.master("--join_token_file", str(master_token))
    args: list[str] = []
    if slave_token is not None:
        slave_file = tmp_path / "slave.token"
        slave_file.write_text(slave_token + "\n")
        args = ["--join_token_file", str(slave_file)]
    slave = fleet.slave(master, *args, wait=False)
    if accepted:
        slave.wait_for_event("registered")
    else:
        assert slave.proc is not None and slave.proc.wait(20) == 1
        refused = slave.events("register_refused")
        assert refused and refused[0]["code"] == "UNAUTHENTICATED"
        assert not slave.events("registered")
    for daemon in (master, slave):
        assert JOIN not in daemon.log_text()
        assert "wrong-token-77" not in daemon.log_text()


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


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        ((), False),
        ((("authorization", "Bearer nope"),), False),
        ((("authorization", f"Bearer {CLIENT}"),), True),
    ],
)
def test_client_token_from_a_file(
    fleet: Fleet, tmp_path: Path, metadata: tuple[tuple[str, str], ...], ok: bool
) -> None:
    """--client_token_file guards Execution just as ARKO_MASTER_CLIENT_TOKEN does."""
    token = tmp_path / "client.token"
    token.write_text(CLIENT + "\n")
    master = fleet.master("--client_token_file", str(token))
    slave = fleet.slave(master, "--run_delay", "0")
    with grpc.insecure_channel(master.address) as channel:
        stub = execution_pb2_grpc.ExecutionStub(channel)
        request = execution_pb2.JobParams(method="MyPipeline.Run", params={"param": "f"})
        if ok:
            assert "done" in stub.ExecuteJob(request, metadata=metadata, timeout=10).message
            assert slave.events("pipeline_run")
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


SECRET = "pw-9f8e7d-NEVER-LOGGED"


def _jobs_with_secrets(master: Daemon) -> dict[str, str]:
    """Three jobs carrying SECRET: one succeeds, two fail; their ids by outcome."""
    ids: dict[str, str] = {}
    with grpc.insecure_channel(master.address) as channel:
        stub = execution_pb2_grpc.ExecutionStub(channel)
        reply = stub.ExecuteJob(
            execution_pb2.JobParams(
                method="MyPipeline.Run", params={"param": "visible", "password": SECRET}
            ),
            timeout=20,
        )
        assert SECRET in reply.message  # the example echoes it to its caller, by its own choice
        ids["succeeded"] = reply.job_id
        for outcome, method, params in (
            ("bad_param", "MyPipeline.Run", {"param": "visible", "api_key": SECRET}),
            ("no_method", "No.Such", {"secret_token": SECRET}),
        ):
            with pytest.raises(grpc.RpcError) as err:
                stub.ExecuteJob(execution_pb2.JobParams(method=method, params=params), timeout=20)
            ids[outcome] = dict(err.value.trailing_metadata())["arko-job-id"]
    return ids


def _assert_records_scrubbed(fleet: Fleet, ids: dict[str, str]) -> None:
    """Each job has its record, secrets redacted in the parameters and scrubbed from the text.

    The secret is in no table either: on SQLite the file scan sees the whole
    database, on PostgreSQL every table is read here.
    """
    rows = {
        row[0]: row[1:]
        for row in fleet.query("SELECT id, params, state, result, error_code FROM job")
    }
    assert rows.keys() == set(ids.values())
    params, state, result, _ = rows[ids["succeeded"]]
    assert (json.loads(params), state) == ({"param": "visible", "password": "***"}, "succeeded")
    assert "job execution done with: visible ***" in result
    params, state, _, code = rows[ids["bad_param"]]
    assert (json.loads(params), state, code) == (
        {"param": "visible", "api_key": "***"},
        "failed",
        "INVALID_ARGUMENT",
    )
    params, state, _, code = rows[ids["no_method"]]
    assert (json.loads(params), state, code) == ({"secret_token": "***"}, "failed", "NOT_FOUND")
    if is_postgres_url(fleet.database()):
        tables = fleet.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {"job", "job_event", "slave"} <= {name for (name,) in tables}
        for (name,) in tables:
            assert SECRET not in repr(fleet.query(f'SELECT * FROM "{name}"')), name


def _assert_secret_in_no_file(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"secret found in {path.name}"


def test_secrets_never_reach_logs_or_the_database(fleet: Fleet) -> None:
    """A known secret is nowhere in the logs or files afterwards, and every job is recorded."""
    master = fleet.master("--log_level", "debug")
    slave = fleet.slave(master, "--run_delay", "0", "--log_level", "debug")
    ids = _jobs_with_secrets(master)
    assert master.stop() == 0 and slave.stop() == 0
    _assert_records_scrubbed(fleet, ids)
    _assert_secret_in_no_file(fleet.workdir)


def test_secrets_never_reach_the_journal_of_a_killed_master(fleet: Fleet) -> None:
    """Killed before any flush, the master leaves only scrubbed lines in its journal.

    The flush interval is an hour, so every record is in the journal alone
    when the master is killed; the next master replays it into the database.
    """
    master = fleet.master("--log_level", "debug", "--job_flush_interval", "3600")
    slave = fleet.slave(master, "--run_delay", "0", "--log_level", "debug")
    ids = _jobs_with_secrets(master)
    master.kill()
    journal = fleet.journal(master)
    lines = [
        json.loads(line) for path in journal.glob("*") for line in path.read_text().splitlines()
    ]
    records = [line for line in lines if "id" in line]  # the rest are output events ("e")
    assert {line["id"] for line in records} == set(ids.values())
    results = [line.get("result") for line in records if line["id"] == ids["succeeded"]]
    assert any("job execution done with: visible ***" in (text or "") for text in results)
    _assert_secret_in_no_file(fleet.workdir)
    again = fleet.master(port=master.port)
    again.wait_for_event("jobs_recovered")
    assert again.stop() == 0 and slave.stop() == 0
    _assert_records_scrubbed(fleet, ids)
    _assert_secret_in_no_file(fleet.workdir)
