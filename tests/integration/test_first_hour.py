"""Issue 8, what a new user meets first: grpcurl on a protected slave, clean stops,
plug-ins from the project folder, suggestions for a mistyped method, the job id
trailer. Real daemons and the real grpcurl binary throughout."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from arko.testing import Daemon, Fleet, free_port
from tests import readme
from tests.pki import CertificateAuthority

PUBLIC = ["grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]


def _grpcurl(grpcurl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([grpcurl, *args], capture_output=True, text=True, timeout=60, check=False)


def _reflect(daemon: Daemon, **request: str) -> reflection_pb2.ServerReflectionResponse:
    """One reflection request to ``daemon``, as any client (not the master) sends it."""
    with daemon.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        asked = reflection_pb2.ServerReflectionRequest(**request)
        (reply,) = stub.ServerReflectionInfo(iter([asked]), timeout=10)
    return reply


@pytest.mark.parametrize("transport", ["plaintext", "mutual_tls"])
def test_a_stranger_sees_only_health_on_a_protected_slave(
    fleet: Fleet, grpcurl: str, tmp_path: Path, transport: str
) -> None:
    """grpcurl list and Health/Check work with no proto; the pipeline stays hidden.

    With mutual TLS the stranger holds a certificate from the fleet's own CA,
    just not the master's. The master still discovers and runs everything.
    """
    if transport == "plaintext":
        who, creds, master_flags, slave_flags = ["-plaintext"], None, [], []
    else:
        ca = CertificateAuthority(tmp_path)
        client = ca.issue("operator", client=True)
        who = ["-cacert", str(ca.cert_path), "-cert", str(client.cert), "-key", str(client.key)]
        creds = grpc.ssl_channel_credentials(
            ca.cert_path.read_bytes(), client.key.read_bytes(), client.cert.read_bytes()
        )
        master_flags = ca.daemon_flags(ca.issue("arko-master"))
        slave_flags = ca.daemon_flags(ca.issue("slave-1"))
    master = fleet.master(*master_flags, credentials=creds)
    slave = fleet.slave(master, *slave_flags, "--run_delay", "0", credentials=creds)

    listing = _grpcurl(grpcurl, *who, slave.address, "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == PUBLIC
    health = _grpcurl(grpcurl, *who, slave.address, "grpc.health.v1.Health/Check")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout) == {"status": "SERVING"}
    described = _grpcurl(grpcurl, *who, slave.address, "describe", "MyPipeline")
    assert described.returncode != 0
    assert "not found" in described.stderr.lower()
    for asked in ({"file_containing_symbol": "MyPipeline"}, {"file_by_filename": "pipeline.proto"}):
        reply = _reflect(slave, **asked)
        assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0], asked

    methods = master.events("slaves_changed")[-1]["slaves"][0]["methods"]
    assert sorted(methods) == [
        "MyPipeline.DryRun",
        "MyPipeline.Rollback",
        "MyPipeline.Run",
        "MyPipelineLogs.Stream",
    ]
    job = '{"method": "MyPipeline.DryRun", "params": {"param": "x"}}'
    ran = _grpcurl(grpcurl, *who, "-d", job, master.address, "Execution/ExecuteJob")
    assert ran.returncode == 0, ran.stderr
    assert "job execution done" in json.loads(ran.stdout)["message"]


def _stray_lines(daemon: Daemon) -> list[str]:
    """What the daemon printed that is not a JSON log event (tracebacks, warnings)."""
    stray = []
    for line in daemon.log_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if line.strip() and not isinstance(event, dict):
            stray.append(line)
    return stray


@pytest.mark.parametrize("after_a_job", [False, True], ids=["idle", "after_a_job"])
def test_a_stopped_daemon_prints_no_traceback(fleet: Fleet, client_for, after_a_job: bool) -> None:
    """SIGTERM stops slave and master with status 0 and nothing but log events on stderr."""
    master = fleet.master()
    slave = fleet.slave(master, "--run_delay", "0")
    if after_a_job:
        assert "done" in client_for(master).run("MyPipeline.DryRun")
    for daemon in (slave, master):
        assert daemon.stop() == 0
        assert daemon.events(f"{daemon.kind}_stopped"), daemon.log_text()
        assert _stray_lines(daemon) == []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder with a plug-in module ``acmeci.build:plugin``."""
    folder = tmp_path / "myproject"
    (folder / "acmeci").mkdir(parents=True)
    (folder / "acmeci" / "__init__.py").write_text("")
    # The user's plug-in; serving the example's service keeps the fixture small.
    (folder / "acmeci" / "build.py").write_text(
        "from arko.slave.mypipeline import plugin as plugin\n"
    )
    return folder


def _installed_slave(
    fleet: Fleet, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> Daemon:
    """An rpc-mode slave run by the installed ``arko-slave`` command, as a user runs it."""
    port = free_port()
    daemon = Daemon(
        "slave",
        port,
        ["--mode", "rpc", *args],
        fleet.workdir / f"installed-slave-{port}.log",
        env=env,
        cwd=cwd,
        program=[str(Path(sys.executable).parent / "arko-slave")],
    )
    fleet.daemons.append(daemon)
    return daemon.start().wait_serving()


def test_plugin_is_imported_from_the_current_folder(fleet: Fleet, project: Path) -> None:
    """``arko-slave --service acmeci.build:plugin`` works from the project folder."""
    slave = _installed_slave(fleet, project, "--service", "acmeci.build:plugin")
    assert slave.events("slave_started")[0]["services"] == ["MyPipeline", "MyPipelineLogs"]


def test_app_dir_and_a_comma_separated_service_variable(
    fleet: Fleet, project: Path, toolbox_env: dict[str, str]
) -> None:
    """--app_dir names the folder; ARKO_SLAVE_SERVICE takes plug-ins separated by commas."""
    env = {**toolbox_env, "ARKO_SLAVE_SERVICE": "acmeci.build:plugin,toolbox_plugin:plugin"}
    slave = _installed_slave(fleet, fleet.workdir, "--app_dir", str(project), env=env)
    services = slave.events("slave_started")[0]["services"]
    assert services == ["MyPipeline", "MyPipelineLogs", "arko.testing.v1.Toolbox"]


def test_not_found_suggests_the_method_meant(
    fleet: Fleet, client_for, toolbox_env: dict[str, str]
) -> None:
    """NOT_FOUND names the closest existing method: any case, package or not, a typo."""
    master = fleet.master()
    fleet.slave(
        master,
        "--service",
        "arko.slave.mypipeline:plugin,toolbox_plugin:plugin",
        env=toolbox_env,
    )
    client = client_for(master)
    for asked, meant in (
        ("Toolbox.Echo", "arko.testing.v1.Toolbox.Echo"),
        ("mypipeline.run", "MyPipeline.Run"),
        ("MyPipeline.Rnu", "MyPipeline.Run"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            client.run(asked)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        details = caught.value.details()  # type: ignore[attr-defined]
        assert f"no registered slave exposes {asked}; did you mean {meant}" in details


def test_job_id_comes_in_the_trailers_as_documented(fleet: Fleet, grpcurl: str) -> None:
    """grpcurl -v shows arko-job-id among the response trailers, not the headers."""
    master = fleet.master()
    fleet.slave(master, "--run_delay", "0")
    job = '{"method": "MyPipeline.DryRun", "params": {"param": "x"}}'
    out = _grpcurl(grpcurl, "-v", "-plaintext", "-d", job, master.address, "Execution/ExecuteJob")
    assert out.returncode == 0, out.stderr
    headers, _, trailers = out.stdout.partition("Response trailers received:")
    job_id = json.loads(headers.partition("Response contents:")[2])["job_id"]
    assert "arko-job-id" not in headers
    assert f"arko-job-id: {job_id}" in trailers


def test_manual_slave_status_transcript_is_what_grpcurl_prints(fleet: Fleet, grpcurl: str) -> None:
    """The manual's grpcurl calls to a protected slave's Slave/Status, run as written.

    The slave registered with a join token, as a fleet's are. Without the
    proto, grpcurl finds no such service (reflection hides it from strangers);
    with it the call is UNAUTHENTICATED. An rpc-mode slave answers anyone.
    """
    env = {
        "ARKO_MASTER_JOIN_TOKEN": "status-join-token",
        "ARKO_SLAVE_JOIN_TOKEN": "status-join-token",
    }
    master = fleet.master(env=env)
    slave = fleet.slave(master, env=env)
    section = readme.section("Capacity, queue and job policy", "docs/jobs.md")
    shown_calls = [b for b in readme.blocks(section, lang="") if "arko.v1.Slave/Status" in b]
    assert len(shown_calls) == 1, "docs/jobs.md shows no grpcurl call to Slave/Status"
    runs = readme.transcript(shown_calls[0])
    assert len(runs) == 2
    for argv, shown in runs:
        assert argv[0] == "grpcurl"
        args = [a.replace("127.0.0.1:10002", slave.address) for a in argv[1:]]
        done = subprocess.run(
            [grpcurl, *args], cwd=readme.ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0
        assert (done.stdout + done.stderr).strip() == shown

    anyone = re.search(r"With `--mode rpc` anyone can call it, with no proto:\s+`([^`]*)`", section)
    assert anyone, "docs/jobs.md does not show the call to an rpc-mode slave"
    rpc = fleet.slave(None)
    argv = [a.replace("127.0.0.1:10002", rpc.address) for a in shlex.split(anyone[1])]
    done = subprocess.run([grpcurl, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "version" in json.loads(done.stdout)
