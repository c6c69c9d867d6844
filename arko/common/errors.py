"""arko's error hierarchy and its single mapping to gRPC status codes.

Domain code raises these; servicers turn them into a status in one place
(``ArkoError.code``), so no caller juggles raw ``grpc.RpcError``.
"""

from __future__ import annotations

import grpc


class ArkoError(Exception):
    """Root of every error arko raises on purpose.

    Attributes:
        code: The gRPC status code a servicer answers with.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InternalError(ArkoError):
    """A bug in arko itself: recorded and answered as INTERNAL, never as UNKNOWN."""

    code = grpc.StatusCode.INTERNAL


class InvalidArgument(ArkoError):
    """The caller sent something malformed: a method name, a parameter, a config."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(ArkoError):
    """The caller did not prove who it is (token or certificate)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class MethodNotFound(ArkoError):
    """No registered slave exposes the requested method."""

    code = grpc.StatusCode.NOT_FOUND


class NoLiveSlave(ArkoError):
    """Slaves expose the method, but none of them is reachable now."""

    code = grpc.StatusCode.UNAVAILABLE


class Unavailable(ArkoError):
    """Something arko depends on (the database, another master) cannot be reached now."""

    code = grpc.StatusCode.UNAVAILABLE


class SlaveCallFailed(ArkoError):
    """The slave answered the job with an error status; we pass its code on."""

    def __init__(self, code: grpc.StatusCode, slave: str, details: str) -> None:
        super().__init__(f"slave {slave} failed the job: {code.name}: {details}")
        self.code = code
        self.slave = slave
        self.details = details


class StartupError(ArkoError):
    """A daemon cannot start: port taken, bad database, bad settings."""


class PermissionDenied(ArkoError):
    """The caller is known but not allowed to do this (e.g. register from afar)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ArkoError):
    """A cap or a rate limit is reached; the message names it."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
