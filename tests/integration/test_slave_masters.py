"""A slave with several masters: its call secret, who pings it, and masters coming and going."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from structlog.testing import capture_logs

from arko.common.auth import MASTER_HEADER, SECRET_HEADER, call_secret
from arko.common.server import create_server
from arko.common.settings import load_settings
from arko.gen import register_pb2, register_pb2_grpc
from arko.slave.app import Slave
from arko.slave.registration import REGISTER_SERVICE
from arko.slave.settings import SlaveSettings
from arko.testing import Daemon, Fleet, wait_until
from arko.v1 import slave_pb2, slave_pb2_grpc
from tests.integration.conftest import Client

JOIN = "join-7Hq2-several-masters"
DONE = "MyPipeline.Run done"
# A bound on each in-process wait, so a broken slave fails rather than hangs.
BOUND = 15


class FakeRegister(register_pb2_grpc.RegisterServicer):
    """A master that only takes registrations, to see what the slave sends."""

    def __init__(self) -> None:
        self.configs: asyncio.Queue[register_pb2.SlaveConfig] = asyncio.Queue()

    async def RegisterNewSlave(
        self, request: register_pb2.SlaveConfig, context: grpc.aio.ServicerContext[Any, Any]
    ) -> register_pb2.SlaveRegisterStatus:
        self.configs.put_nowait(request)
        return register_pb2.SlaveRegisterStatus(message="done")


@asynccontextmanager
async def _fake_master_and_slave(
    monkeypatch: pytest.MonkeyPatch, join_token: str | None
) -> AsyncIterator[tuple[register_pb2.SlaveConfig, grpc.aio.Channel]]:
    """A slave registered with a fake master: what it sent, and a channel to the slave."""
    fake = FakeRegister()
    built = create_server(
        "127.0.0.1",
        0,
        [
            (
                REGISTER_SERVICE,
                lambda server: register_pb2_grpc.add_RegisterServicer_to_server(fake, server),
            )
        ],
    )
    await built.health.set(REGISTER_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    await built.server.start()
    if join_token is not None:
        monkeypatch.setenv("ARKO_SLAVE_JOIN_TOKEN", join_token)
    settings = load_settings(
        SlaveSettings,
        ["--master", f"127.0.0.1:{built.port}", "--port", "0", "--listen_host", "127.0.0.1"],
    )
    try:
        async with Slave(settings) as slave:
            async with asyncio.timeout(BOUND):
                config = await fake.configs.get()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{slave.port}") as channel:
                yield config, channel
    finally:
        await built.server.stop(0)


async def _status(channel: grpc.aio.Channel, secret: str, master: str | None = None) -> str:
    """Call Slave/Status as a master presenting ``secret``; the status code's name."""
    metadata = [(SECRET_HEADER, secret)] + ([(MASTER_HEADER, master)] if master else [])
    try:
        await slave_pb2_grpc.SlaveStub(channel).Status(
            slave_pb2.StatusRequest(), metadata=metadata, timeout=BOUND
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return "OK"


def test_with_a_join_token_any_master_derives_the_call_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slave sends a nonce; call_secret(token, nonce) is let in, any other secret is not."""

    async def scenario() -> None:
        async with _fake_master_and_slave(monkeypatch, JOIN) as (config, channel):
            assert config.token == JOIN and config.call_nonce
            assert config.call_secret == call_secret(JOIN, config.call_nonce)
            assert await _status(channel, call_secret(JOIN, config.call_nonce)) == "OK"
            assert await _status(channel, call_secret(JOIN, "another-nonce")) == "UNAUTHENTICATED"
            wrong = call_secret("another-token", config.call_nonce)
            assert await _status(channel, wrong) == "UNAUTHENTICATED"

    asyncio.run(scenario())


def test_without_a_join_token_the_secret_is_the_one_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """No join token: no nonce, and only the random secret sent at registration is let in."""

    async def scenario() -> None:
        async with _fake_master_and_slave(monkeypatch, None) as (config, channel):
            assert (config.token, config.call_nonce) == ("", "")
            assert await _status(channel, config.call_secret) == "OK"
            assert await _status(channel, call_secret("", "")) == "UNAUTHENTICATED"

    asyncio.run(scenario())


def test_status_read_names_the_calling_master(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Status call logs status_read with the caller's arko-master header, "" without."""

    async def scenario() -> None:
        async with _fake_master_and_slave(monkeypatch, None) as (config, channel):
            with capture_logs() as logs:
                assert await _status(channel, config.call_secret, master="master-a") == "OK"
                assert await _status(channel, config.call_secret) == "OK"
        reads = [x for x in logs if x["event"] == "status_read"]
        assert [(x["master"], x["log_level"]) for x in reads] == [
            ("master-a", "debug"),
            ("", "debug"),
        ]

    asyncio.run(scenario())


def _registered_with(slave: Daemon, master: Daemon) -> int:
    return sum(1 for x in slave.events("registered") if x.get("master") == master.address)


def test_slave_with_two_masters_survives_one_going_away(
    fleet: Fleet, tmp_path: Path, client_for: type[Client]
) -> None:
    """Registered at A and B, jobs run through both; A stops: B still works; A returns: back."""
    a_db, b_db = tmp_path / "a.db", tmp_path / "b.db"
    a = fleet.master("--ping_interval", "0.5", "--name", "a", db=a_db)
    b = fleet.master("--ping_interval", "0.5", "--name", "b", db=b_db)
    slave = fleet.slave(
        [a, b], "--run_delay", "0", "--register_backoff_max", "0.5", "--log_level", "debug"
    )
    assert (_registered_with(slave, a), _registered_with(slave, b)) == (1, 1)
    a_client, b_client = client_for(a), client_for(b)
    for client in (a_client, b_client):
        assert client.run("MyPipeline.Run", param="x").startswith(DONE)
    # Both masters ping, each naming itself (the arko-master header).
    reads = wait_until(
        lambda: {x["master"] for x in slave.events("status_read")} == {"a", "b"},
        15,
        "pings from both masters, each named",
    )
    assert reads

    a.stop()
    slave.wait_for_event("master_lost")
    wait_until(lambda: slave.events("register_retry"), 15, "the slave to knock on A's door")
    for n in range(3):
        assert b_client.run("MyPipeline.Run", param=f"b-{n}").startswith(DONE)
    assert [x["master"] for x in slave.events("master_lost")] == [a.address]
    assert {x["master"] for x in slave.events("register_retry")} == {a.address}
    assert _registered_with(slave, b) == 1

    fleet.master("--ping_interval", "0.5", "--name", "a", port=a.port, db=a_db)
    wait_until(lambda: _registered_with(slave, a) == 2, 15, "the slave to register with A again")
    assert a_client.run("MyPipeline.Run", param="a-again").startswith(DONE)
    assert b_client.run("MyPipeline.Run", param="b-again").startswith(DONE)
    assert [x["master"] for x in slave.events("master_lost")] == [a.address]
    assert _registered_with(slave, b) == 1 and slave.alive()


def test_a_master_that_refuses_is_given_up_and_the_others_kept(
    fleet: Fleet, client_for: type[Client]
) -> None:
    """A refuses the slave's join token, B takes it: the slave serves B and names A refused."""
    a = fleet.master(env={"ARKO_MASTER_JOIN_TOKEN": "another-token-55"}, db=fleet.database("a"))
    b = fleet.master(db=fleet.database("b"))
    slave = fleet.slave([a, b], "--run_delay", "0", env={"ARKO_SLAVE_JOIN_TOKEN": JOIN}, wait=False)
    refused = slave.wait_for_event("register_refused")
    slave.wait_for_event("registered")
    assert (refused["master"], refused["code"]) == (a.address, "UNAUTHENTICATED")
    assert [x["master"] for x in slave.events("registered")] == [b.address]
    assert client_for(b).run("MyPipeline.Run", param="b").startswith(DONE)
    assert slave.alive()
    assert JOIN not in slave.log_text()


def test_the_slave_exits_1_once_every_master_refused(fleet: Fleet) -> None:
    """With every master refusing the join token, the slave has no one to serve: exit 1."""
    masters = [
        fleet.master(env={"ARKO_MASTER_JOIN_TOKEN": "another-token-55"}, db=fleet.database(name))
        for name in ("a", "b")
    ]
    slave = fleet.slave(masters, env={"ARKO_SLAVE_JOIN_TOKEN": JOIN}, wait=False)
    assert slave.proc is not None and slave.proc.wait(20) == 1
    refused = {x["master"] for x in slave.events("register_refused")}
    assert refused == {x.address for x in masters}
