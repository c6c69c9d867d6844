"""What the shared server factory says about where it listens.

These build the server in-process and never start it: binding is all the
warning depends on, and an unstarted server answers no call, so even the test
that binds every interface serves nothing to the network.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from arko.common.server import create_server
from arko.common.tls import TlsConfig
from tests.pki import CertificateAuthority


def _listener_events(host: str, tls: TlsConfig | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Bind a server on ``host`` (any free port), stop it unstarted; its port and log events."""

    async def build() -> tuple[int, list[dict[str, Any]]]:
        with capture_logs() as logs:
            built = create_server(host, 0, [], tls)
        await built.server.stop(None)
        return built.port, [e for e in logs if e["event"] == "plaintext_listener"]

    return asyncio.run(build())


def test_plaintext_on_every_interface_is_logged() -> None:
    """Plaintext on a non-loopback address logs plaintext_listener, naming the address."""
    port, events = _listener_events("0.0.0.0")
    assert len(events) == 1
    assert events[0]["address"] == f"0.0.0.0:{port}"
    assert events[0]["log_level"] == "warning"


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
def test_plaintext_on_loopback_is_not_logged(host: str) -> None:
    """Plaintext that stays on this machine is the local default: no warning."""
    assert _listener_events(host)[1] == []


def test_tls_on_every_interface_is_not_logged(tmp_path: Path) -> None:
    """TLS on a non-loopback address is what the warning asks for: no warning."""
    ca = CertificateAuthority(tmp_path)
    issued = ca.issue("master")
    tls = TlsConfig(cert=issued.cert.read_bytes(), key=issued.key.read_bytes())
    assert _listener_events("0.0.0.0", tls)[1] == []
