"""Which Host headers the master's HTTP server answers (arko.master.api.http.hosts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arko.common.settings import load_settings
from arko.master.api.http.hosts import HostGuard, host_name
from arko.master.settings import MasterSettings


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "::1"),
        ("LocalHost", "localhost"),
        ("ci.example:443", "ci.example"),
        ("[::1", None),
        ("host:notaport", None),
        ("", None),
    ],
)
def test_host_name_drops_port_brackets_and_case(header: str, name: str | None) -> None:
    """The name is compared without port, brackets or case; a malformed header has none."""
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("listen", "accepted", "refused"),
    [
        ("127.0.0.1", ["127.0.0.1:1", "localhost", "LOCALHOST:9"], ["10.0.0.1", "evil.example"]),
        ("[::1]", ["[::1]:1", "localhost:2"], ["127.0.0.2", "evil.example"]),
        ("localhost", ["127.0.0.1:1", "[::1]", "localhost:2"], ["10.0.0.1", "evil.example"]),
        ("10.0.0.5", ["10.0.0.5:80"], ["localhost", "127.0.0.1", "evil.example"]),
        ("[::]", ["[::1]:1", "10.0.0.5", "localhost:3"], ["evil.example", "127.0.0.1.nip.io"]),
        ("0.0.0.0", ["192.168.1.2:8080", "localhost"], ["evil.example"]),
    ],
)
def test_listen_address_decides_the_default_names(
    listen: str, accepted: list[str], refused: list[str]
) -> None:
    """A given address answers to itself (and the loopback names when loopback); a wildcard
    to any IP address and localhost."""
    guard = HostGuard(listen, [])
    assert [h for h in accepted if not guard.accepts(h)] == []
    assert [h for h in refused if guard.accepts(h)] == []


def test_allowed_hosts_are_added_and_malformed_ones_refused() -> None:
    """--http_allowed_hosts adds names, case-blind; a Host that does not parse is refused."""
    guard = HostGuard("127.0.0.1", ["CI.example", "[fd00::1]"])
    assert guard.accepts("ci.example:8443")
    assert guard.accepts("[fd00::1]:80")
    assert not guard.accepts("[::1")
    assert not guard.accepts("")


def test_a_request_without_host_is_answered() -> None:
    """HTTP/1.0 without Host comes from no browser, so no page can have rebound it."""
    assert HostGuard("127.0.0.1", []).accepts(None)


def test_allowed_hosts_come_from_flags_env_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--http_allowed_hosts is a comma list in every source a setting has."""
    config = tmp_path / "master.toml"
    config.write_text('http_allowed_hosts = ["ci.example"]\n')
    assert load_settings(MasterSettings, ["--config", str(config)]).http_allowed_hosts == [
        "ci.example"
    ]
    flags = ["--http_allowed_hosts", "a.example,b.example", "--http_allowed_hosts", "c.example"]
    assert load_settings(MasterSettings, flags).http_allowed_hosts == [
        "a.example",
        "b.example",
        "c.example",
    ]
    monkeypatch.setenv("ARKO_MASTER_HTTP_ALLOWED_HOSTS", "x.example, y.example")
    assert load_settings(MasterSettings, []).http_allowed_hosts == ["x.example", "y.example"]
