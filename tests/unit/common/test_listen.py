"""How ``--listen_host`` becomes a bind for the HTTP listeners, and the URL a daemon prints."""

from __future__ import annotations

import socket

import pytest

from arko.common.listen import Bind, bind_for, url_host


@pytest.mark.parametrize("host", ["[::]", "::", ""])
def test_the_ipv6_wildcard_is_dual_stack(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """The default host binds one IPv6 socket that takes IPv4 too, where the machine can."""
    monkeypatch.setattr(socket, "has_dualstack_ipv6", lambda: True)
    assert bind_for(host, 8080) == Bind("::", socket.AF_INET6, dual_stack=True)


def test_without_ipv6_the_wildcard_falls_back_to_ipv4(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine without IPv6 the default host still serves every IPv4 interface."""
    monkeypatch.setattr(socket, "has_dualstack_ipv6", lambda: False)
    assert bind_for("[::]", 8080) == Bind("0.0.0.0", socket.AF_INET, dual_stack=False)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", Bind("127.0.0.1", socket.AF_INET, dual_stack=False)),
        ("0.0.0.0", Bind("0.0.0.0", socket.AF_INET, dual_stack=False)),
        ("[::1]", Bind("::1", socket.AF_INET6, dual_stack=False)),
        ("::1", Bind("::1", socket.AF_INET6, dual_stack=False)),
    ],
)
def test_an_explicit_address_binds_as_given(host: str, expected: Bind) -> None:
    """An address other than the IPv6 wildcard binds that address alone, in its own family."""
    assert bind_for(host, 8080) == expected


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("[::]", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("::1", "[::1]"),
        ("build.example", "build.example"),
    ],
)
def test_printed_urls_name_a_host_that_answers(host: str, shown: str) -> None:
    """A wildcard is shown as 127.0.0.1 (it answers on every wildcard bind); IPv6 in brackets."""
    assert url_host(host) == shown
