"""Registration hardening (issue 22 item 2): protected mode, no take-over of a
live slave, a cap, a rate limit, and down reasons that do not scan ports.

Every daemon is real and on loopback; a non-loopback peer is tested on the
servicer's decision in tests/unit/master/slaves/test_admission.py.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import grpc
import pytest

from arko.gen import register_pb2, register_pb2_grpc
from arko.testing import LOOPBACK, Daemon, Fleet, free_port, wait_until
from arko.v1 import admin_pb2, admin_pb2_grpc
from tests.integration.conftest import Client


def _register(master: Daemon, port: int, secret: str = "") -> None:
    """RegisterNewSlave naming 127.0.0.1:``port``, as any caller on the network could."""
    with grpc.insecure_channel(master.address) as channel:
        register_pb2_grpc.RegisterStub(channel).RegisterNewSlave(
            register_pb2.SlaveConfig(host=LOOPBACK, port=port, call_secret=secret), timeout=30
        )


def _refusal(master: Daemon, port: int, secret: str = "") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _register(master, port, secret)
    return caught.value


def _slaves(master: Daemon) -> dict[str, admin_pb2.SlaveInfo]:
    with grpc.insecure_channel(master.address) as channel:
        reply = admin_pb2_grpc.AdminStub(channel).ListSlaves(
            admin_pb2.ListSlavesRequest(), timeout=10
        )
    return {s.address: s for s in reply.slaves}


@contextlib.contextmanager
def _silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel does) and never says a word."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_protected_mode_is_announced_and_loopback_slaves_still_register(fleet: Fleet) -> None:
    """No join token: one warning at start says how to open registration; 127.0.0.1 registers."""
    master = fleet.master()
    (warning,) = master.events("registration_protected")
    assert warning["level"] == "warning"
    assert "set a join token" in warning["message"] and "--open_registration" in warning["message"]
    slave = fleet.slave(master)
    assert _slaves(master)[slave.address].status == "LIVE"
    opened = fleet.master("--open_registration", db=fleet.workdir / "open.db")
    assert opened.events("registration_protected") == []


def test_a_stranger_cannot_take_over_a_live_slave(fleet: Fleet, client_for: type[Client]) -> None:
    """RegisterNewSlave naming a live slave with another call secret is refused; it stays live."""
    master = fleet.master()
    slave = fleet.slave(master)
    refused = _refusal(master, slave.port, secret="not-the-slaves-secret")
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, refused.details()
    assert slave.address in (refused.details() or "")
    assert _slaves(master)[slave.address].status == "LIVE"
    reply = client_for(master).run("MyPipeline.DryRun")
    assert reply.startswith("MyPipeline.DryRun done"), reply
    assert _slaves(master)[slave.address].status == "LIVE"


def test_max_slaves_refuses_a_new_slave_but_not_a_known_one(fleet: Fleet) -> None:
    master = fleet.master("--max_slaves", "1")
    known = free_port()  # closed: kept as a down slave, as the original did
    _register(master, known)
    _register(master, known)  # registering again is not a new slave
    refused = _refusal(master, free_port())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max_slaves" in (refused.details() or "")
    assert list(_slaves(master)) == [f"{LOOPBACK}:{known}"]


def test_registrations_from_one_peer_are_rate_limited(fleet: Fleet) -> None:
    master = fleet.master("--register_rate_limit", "5")
    port = free_port()
    codes = []
    for _ in range(8):  # bounded: the limit and a few more
        try:
            _register(master, port)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert codes == [grpc.StatusCode.OK] * 5 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
    assert master.alive()


def test_down_reasons_do_not_tell_closed_silent_and_non_grpc_ports_apart(fleet: Fleet) -> None:
    """A closed port, a silent one and an HTTP/1 server read alike; the log has the detail."""
    http_port = free_port()
    master = fleet.master("--ping_timeout", "1", "--http_port", str(http_port))
    closed = free_port()
    with _silent_port() as silent:
        for port in (closed, silent, http_port):
            _register(master, port)
        slaves = _slaves(master)
    reasons = {slaves[f"{LOOPBACK}:{p}"].reason for p in (closed, silent, http_port)}
    assert len(reasons) == 1, reasons
    assert "not reachable as a gRPC slave" in reasons.pop()
    logged = wait_until(
        lambda: (down := master.events("slave_down")) and len(down) >= 3 and down,
        15,
        "three slave_down log lines",
    )
    assert len({e["reason"] for e in logged}) == 3  # the operator still sees why


def _register_with_proof(master: Daemon, port: int) -> grpc.RpcError:
    """A registration carrying a nonce the slave at ``port`` never sent; its refusal."""
    with grpc.insecure_channel(master.address) as channel, pytest.raises(grpc.RpcError) as caught:
        register_pb2_grpc.RegisterStub(channel).RegisterNewSlave(
            register_pb2.SlaveConfig(
                host=LOOPBACK, port=port, call_secret="mine", registration_nonce="guessed"
            ),
            timeout=30,
        )
    return caught.value


def test_a_registration_the_address_does_not_confirm_stores_nothing(fleet: Fleet) -> None:
    """Closed port, a slave that made no registration, a live one: refused, nothing changed."""
    master = fleet.master()
    live = fleet.slave(master)
    unregistered = fleet.slave(None)  # --mode rpc: it registers nowhere
    for port in (free_port(), unregistered.port, live.port):
        refused = _register_with_proof(master, port)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, refused.details()
        assert "did not confirm this registration" in (refused.details() or "")
    assert {a: s.status for a, s in _slaves(master).items()} == {live.address: "LIVE"}
    assert fleet.query("SELECT host, port, status FROM slave") == [(LOOPBACK, live.port, 1)]
