"""Tests of the checks of registration: validate_address, peer_host, secrets and nonces."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arko.common.errors import InvalidArgument
from arko.master.api.servicers import peer_host
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import MAX_SECRET, Registry, validate_address
from arko.master.store.rows import SlaveRow
from arko.master.store.sql import SqliteStore


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        (" 10.0.0.7 ", "10.0.0.7"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("localhost", "localhost"),
        ("Build-Agent-7.CI.example.com", "build-agent-7.ci.example.com"),
        ("a" * 63 + ".example.com", "a" * 63 + ".example.com"),
    ],
)
def test_good_hosts_come_back_canonical(host: str, expected: str) -> None:
    """IP addresses and hostnames are accepted, trimmed, unbracketed and lower-cased."""
    assert validate_address(host, 10002) == expected


@pytest.mark.parametrize("port", [1, 10002, 65535])
def test_ports_in_range_are_accepted(port: int) -> None:
    """Every port from 1 to 65535 is accepted."""
    assert validate_address("127.0.0.1", port) == "127.0.0.1"


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_port_out_of_range_is_refused(port: int) -> None:
    """A port outside 1-65535 is refused, quoting it and the range."""
    with pytest.raises(InvalidArgument, match=f"port {port} is out of range 1-65535"):
        validate_address("127.0.0.1", port)


@pytest.mark.parametrize("host", ["", "   ", "[]"])
def test_empty_host_is_refused(host: str) -> None:
    """A host that is empty once trimmed and unbracketed is refused as empty."""
    with pytest.raises(InvalidArgument, match="host is empty"):
        validate_address(host, 10002)


@pytest.mark.parametrize(
    "host",
    [
        "a b",
        "-bad-",
        "bad-.example.com",
        "a..b",
        "under_score.example",
        "host:10002",
        "a" * 64 + ".example.com",
        ".".join(["a" * 63] * 4) + ".com",
        "[not-ipv6",
    ],
)
def test_bad_hosts_are_refused(host: str) -> None:
    """Strings that are neither an IP address nor a hostname are refused."""
    with pytest.raises(InvalidArgument, match="is neither an IP address nor a hostname"):
        validate_address(host, 10002)


def test_message_of_a_very_long_host_is_bounded() -> None:
    """A huge host is quoted only in part, so the error stays readable."""
    with pytest.raises(InvalidArgument) as caught:
        validate_address("x" * 10_000, 10002)
    assert len(caught.value.message) < 200


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("ipv4:127.0.0.1:5555", "127.0.0.1"),
        ("ipv4:10.1.2.3:1", "10.1.2.3"),
        ("ipv6:[::1]:5555", "::1"),
        ("ipv6:[2001:db8::7]:40000", "2001:db8::7"),
    ],
)
def test_peer_host_extracts_the_ip(peer: str, expected: str) -> None:
    """The caller's IP is read from gRPC's ipv4:/ipv6: peer strings."""
    assert peer_host(peer) == expected


@pytest.mark.parametrize("peer", ["unix:/x", "unix-abstract:arko", ""])
def test_peer_host_refuses_non_ip_peers(peer: str) -> None:
    """A caller without an IP address gets an error saying to give a host."""
    with pytest.raises(InvalidArgument, match="host is empty"):
        peer_host(peer)


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("ipv6:%5B::1%5D:5555", "::1"), ("ipv6:%5B2001:db8::7%5D:40000", "2001:db8::7")],
)
def test_peer_host_reads_percent_encoded_ipv6(peer: str, expected: str) -> None:
    """IPv6 peers in gRPC's percent-encoded URI form give their IP."""
    assert peer_host(peer) == expected


def test_unparseable_ip_peer_is_an_invalid_argument() -> None:
    """A peer string with an ipv4 prefix but no IP is refused as InvalidArgument."""
    with pytest.raises(InvalidArgument):
        peer_host("ipv4:not-an-ip:5555")


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("secret", "a\x00b", "printable ASCII"),
        ("nonce", "a\x00b", "printable ASCII"),
        ("nonce", "é", "printable ASCII"),
        ("secret", "line\nbreak", "printable ASCII"),
        ("nonce", "x" * (MAX_SECRET + 1), "longer than"),
    ],
)
def test_bad_call_secrets_and_nonces_are_refused_before_storing(
    tmp_path: Path, field: str, value: str, why: str
) -> None:
    """A secret or nonce no header or database could carry is refused; nothing is kept."""

    async def scenario() -> list[SlaveRow]:
        store = await SqliteStore.open(tmp_path / "arko.db")
        try:
            registry = Registry(store, Prober(1))
            with pytest.raises(InvalidArgument, match=f"call_{field} .*{why}"):
                await registry.register("127.0.0.1", 1, **{field: value})
            return await store.list_slaves()
        finally:
            await store.close()

    assert asyncio.run(scenario()) == []
