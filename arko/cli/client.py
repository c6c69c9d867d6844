"""The CLI's connection to a master, and how gRPC failures become exit codes.

Blocking gRPC: a command makes one or two calls and prints, so an event loop
would buy nothing. Every failure is mapped here, once, to a sentence and an
exit code; commands never print a stack trace for a user's mistake.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import grpc

from arko.v1 import admin_pb2_grpc, jobs_pb2_grpc, secrets_pb2_grpc

DEFAULT_MASTER = "127.0.0.1:10001"


class Exit(IntEnum):
    """Exit codes of ``arko`` (listed in ``arko --help``)."""

    OK = 0
    JOB_FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    NOT_FOUND = 4
    CANCELLED = 5
    ERROR = 6


EXIT_HELP = (
    "Exit codes: 0 success (the job succeeded); 1 the job failed or was interrupted; "
    "2 usage error (bad option, field or value); 3 master unreachable; "
    "4 not found (job, method or slave); 5 the job was cancelled; "
    "6 other error from the master (e.g. refused token)."
)


class CliError(Exception):
    """A failure to report in one line and exit with ``code``."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_BY_STATUS = {
    grpc.StatusCode.UNAVAILABLE: Exit.UNREACHABLE,
    grpc.StatusCode.NOT_FOUND: Exit.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: Exit.USAGE,
    grpc.StatusCode.CANCELLED: Exit.CANCELLED,
}


def with_code(code: str, message: str) -> str:
    """``CODE: message`` with the code once: a slave's failure already carries it
    (``slave … failed the job: ABORTED: …``)."""
    if not code or f"{code}:" in message:
        return message
    return f"{code}: {message}" if message else code


def from_rpc(error: grpc.RpcError, master: str) -> CliError:
    """The one mapping from a failed call to a message and an exit code."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        return CliError(f"cannot reach the master at {master}: {details}", Exit.UNREACHABLE)
    return CliError(with_code(code.name, details), _BY_STATUS.get(code, Exit.ERROR))


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the master is and how to prove who we are.

    ``token`` is the master's client token (``ARKO_CLIENT_TOKEN`` or
    ``--client_token_file``; never a flag value, which others can read in ps).
    """

    master: str = DEFAULT_MASTER
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    token: str | None = None
    timeout: float = 30.0

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the bearer token, when there is one."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials from the files given (system roots without --ca_file)."""

        def read(path: Path | None, what: str) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as exc:
                raise CliError(f"cannot read {what} {path}: {exc.strerror}", Exit.USAGE) from None

        if (self.cert_file is None) != (self.key_file is None):
            raise CliError("--cert_file and --key_file go together", Exit.USAGE)
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file, "CA file"),
            private_key=read(self.key_file, "key file"),
            certificate_chain=read(self.cert_file, "certificate"),
        )

    @contextlib.contextmanager
    def open(self) -> Iterator[Stubs]:
        """Stubs on a channel to the master, closed at the end; failures become CliError."""
        if self.tls:
            channel = grpc.secure_channel(self.master, self.credentials())
        else:
            channel = grpc.insecure_channel(self.master)
        try:
            yield Stubs(channel, self)
        except grpc.RpcError as exc:
            raise from_rpc(exc, self.master) from None
        finally:
            channel.close()


class Stubs:
    """The services the CLI calls, with the connection's metadata and timeout."""

    def __init__(self, channel: grpc.Channel, conn: Connection) -> None:
        self.conn = conn
        self.jobs = jobs_pb2_grpc.JobsStub(channel)
        self.admin = admin_pb2_grpc.AdminStub(channel)
        self.secrets = secrets_pb2_grpc.SecretsStub(channel)

    def options(self, timeout: bool = True) -> dict[str, Any]:
        """Keyword arguments of a call: metadata, and a deadline unless it streams on."""
        kwargs: dict[str, Any] = {"metadata": self.conn.metadata}
        if timeout:
            kwargs["timeout"] = self.conn.timeout
        return kwargs


def read_token(token_file: Path | None) -> str | None:
    """The client token from ``--client_token_file`` or ``ARKO_CLIENT_TOKEN``.

    Raises:
        CliError: the file cannot be read or is empty.
    """
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read {token_file}: {exc.strerror}", Exit.USAGE) from None
        if not token:
            raise CliError(f"token file {token_file} is empty", Exit.USAGE)
        return token
    return os.environ.get("ARKO_CLIENT_TOKEN") or None
