"""TLS material of a daemon and the credentials made from it.

One rule for both daemons: ``--tls`` puts every link of the daemon on TLS, the
ones it serves and the ones it dials. ``--ca_file`` is the CA that vouches for
the other side: servers then require client certificates signed by it (mutual
TLS), and clients verify servers with it instead of the system roots.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from arko.common.errors import StartupError


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """PEM bytes of a certificate, its key and, optionally, the CA to trust."""

    cert: bytes
    key: bytes
    ca: bytes | None = None

    @property
    def mutual(self) -> bool:
        """Whether peers must present certificates signed by our CA."""
        return self.ca is not None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StartupError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_tls(
    enabled: bool, cert_file: Path | None, key_file: Path | None, ca_file: Path | None
) -> TlsConfig | None:
    """Read the files a daemon's settings name; None when TLS is off.

    Raises:
        StartupError: TLS is on without cert and key, or a file is unreadable.
    """
    if not enabled:
        if ca_file is not None:
            raise StartupError("--ca_file needs --tls")
        return None
    if cert_file is None or key_file is None:
        raise StartupError("--tls needs both --cert_file and --key_file")
    ca = _read(ca_file, "CA file") if ca_file is not None else None
    return TlsConfig(_read(cert_file, "certificate"), _read(key_file, "key"), ca)


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Server side: our certificate; with a CA, client certificates are required."""
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=tls.mutual
    )


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Client side: verify the server with our CA, present our certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )


def open_channel(
    address: str, tls: TlsConfig | None, options: Sequence[tuple[str, int | str]] = ()
) -> grpc.aio.Channel:
    """A grpc.aio channel to ``address``, over TLS when ``tls`` is given."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, channel_credentials(tls), options=list(options))


def is_loopback(host: str) -> bool:
    """Whether a listen or dial host stays on this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
