"""Tests of who may register with the master, and how often (arko.master.slaves.admission)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from arko.common.errors import PermissionDenied, ResourceExhausted
from arko.gen import register_pb2
from arko.master.api.servicers import RegisterServicer
from arko.master.slaves.admission import PEERS_KEPT, RateLimit, check_protected, is_loopback_peer
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.store.sql import SqliteStore


@pytest.mark.parametrize(
    "peer",
    [
        "ipv4:127.0.0.1:5000",
        "ipv4:127.8.9.1:1",
        "ipv6:%5B::1%5D:5000",
        "ipv6:[::1]:7",
        "ipv6:%5B::ffff:127.0.0.1%5D:5000",
    ],
)
def test_loopback_peers(peer: str) -> None:
    assert is_loopback_peer(peer)
    check_protected(peer, protected=True)


@pytest.mark.parametrize(
    "peer",
    [
        "ipv4:10.1.2.3:5000",
        "ipv6:%5B2001:db8::1%5D:5000",
        "ipv6:%5B::ffff:10.0.0.1%5D:5000",
        "unix:/tmp/sock",
        "ipv4:localhost:5",
        "",
    ],
)
def test_other_peers_are_refused_in_protected_mode(peer: str) -> None:
    assert not is_loopback_peer(peer)
    with pytest.raises(PermissionDenied, match="set a join token to let other hosts register"):
        check_protected(peer, protected=True)
    check_protected(peer, protected=False)  # --open_registration, a join token or mTLS


class _Context:
    """Just enough of a grpc.aio.ServicerContext: a peer and an abort."""

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def peer(self) -> str:
        return self._peer

    async def abort(self, code: grpc.StatusCode, details: str, trailer: Any = ()) -> None:
        self.code, self.details = code, details
        raise RuntimeError("aborted")


def test_the_servicer_refuses_a_remote_peer_before_storing_anything(tmp_path: Path) -> None:
    """The decision the daemon makes for a non-loopback peer, on a fake peer string."""

    async def scenario() -> tuple[_Context, int]:
        store = await SqliteStore.open(tmp_path / "arko.db")
        try:
            servicer = RegisterServicer(Registry(store, Prober(1)), None, protected=True)
            context = _Context("ipv4:192.0.2.7:40000")
            config = register_pb2.SlaveConfig(host="127.0.0.1", port=1)
            with pytest.raises(RuntimeError, match="aborted"):
                await servicer.RegisterNewSlave(config, context)  # type: ignore[arg-type]
            return context, len(await store.list_slaves())
        finally:
            await store.close()

    context, stored = asyncio.run(scenario())
    assert context.code == grpc.StatusCode.PERMISSION_DENIED
    assert "set a join token to let other hosts register" in context.details
    assert "--open_registration" in context.details
    assert stored == 0


def test_rate_limit_counts_per_host_whatever_the_port() -> None:
    limit = RateLimit(3)
    for port in range(3):
        limit.check(f"ipv4:10.0.0.1:{port}")
    with pytest.raises(ResourceExhausted, match="at most 3 a minute"):
        limit.check("ipv4:10.0.0.1:99")
    with pytest.raises(ResourceExhausted):
        limit.check("ipv6:%5B::ffff:10.0.0.1%5D:5")  # the same host over IPv6
    limit.check("ipv4:10.0.0.2:1")  # another host has its own count
    RateLimit(0).check("ipv4:10.0.0.1:1")  # 0: no limit


def test_rate_limit_memory_is_bounded() -> None:
    limit = RateLimit(2)
    for n in range(PEERS_KEPT + 100):
        limit.check(f"ipv6:%5B2001:db8::{n:x}%5D:1")
    assert len(limit._seen) == PEERS_KEPT
