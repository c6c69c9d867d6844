"""How much work a slave takes at once, and the common service that tells the master.

The slave is the authority on its capacity: :class:`CapacityGate` refuses a
pipeline call past ``--capacity`` before its handler runs, with
RESOURCE_EXHAUSTED and the trailing metadata ``arko-refused: capacity``, so a
master can tell "never started, send it elsewhere" from a job that failed.
:class:`StatusServicer` serves ``arko.v1.Slave/Status``: capacity, running
calls, labels and version, which the master reads when it pings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from arko import __version__
from arko.common.auth import MASTER_HEADER
from arko.common.capacity import REFUSED_CAPACITY, REFUSED_HEADER
from arko.common.interceptors import around
from arko.v1 import slave_pb2, slave_pb2_grpc

if TYPE_CHECKING:
    from arko.slave.guard import Continuation

log = structlog.get_logger("arko.slave.capacity")

# Infrastructure calls never count against capacity: a full slave must still
# answer its master's pings, and reflection, and this very status.
UNCOUNTED_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    f"/{slave_pb2.DESCRIPTOR.services_by_name['Slave'].full_name}/",
)


def parse_labels(items: list[str]) -> dict[str, str]:
    """``key=value`` items as a dict.

    Raises:
        ValueError: an item without ``=`` or with an empty key.
    """
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"label {item!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


class CapacityGate(grpc.aio.ServerInterceptor):
    """Counts running pipeline calls and refuses those past ``capacity`` (0: no limit).

    The check and the count happen with no ``await`` in between, so two calls
    arriving together cannot both take the last place.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(UNCOUNTED_PREFIXES):
            return handler
        method = handler_call_details.method

        async def enter(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await self._enter(context, method)

        return around(handler, enter, self._leave)

    async def _enter(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        if self.capacity and self.running >= self.capacity:
            log.info("call_refused", method=method, capacity=self.capacity, running=self.running)
            context.set_trailing_metadata(((REFUSED_HEADER, REFUSED_CAPACITY),))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"slave is full: {self.running} of {self.capacity} calls running (--capacity); "
                "the call was not started",
            )
        self.running += 1

    def _leave(self) -> None:
        self.running -= 1


class StatusServicer(slave_pb2_grpc.SlaveServicer):
    """``arko.v1.Slave/Status``: what the master needs to decide whether to send more."""

    def __init__(
        self,
        gate: CapacityGate,
        labels: Mapping[str, str],
        confirm: Callable[[str], bool],
    ) -> None:
        self._gate = gate
        self._labels = dict(labels)
        self._version = __version__
        # The registration module's word on a nonce (a slave in rpc mode sends none).
        self._confirm = confirm

    async def ConfirmRegistration(
        self,
        request: slave_pb2.ConfirmRegistrationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> slave_pb2.ConfirmRegistrationReply:
        return slave_pb2.ConfirmRegistrationReply(confirmed=self._confirm(request.nonce))

    async def Status(
        self, request: slave_pb2.StatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> slave_pb2.SlaveStatus:
        # Every ping of a master reads this: the debug line shows, in the
        # slave's own log, which master pings it and how often.
        log.debug("status_read", master=_caller_master(context))
        return slave_pb2.SlaveStatus(
            capacity=self._gate.capacity,
            running=self._gate.running,
            labels=self._labels,
            version=self._version,
        )


def _caller_master(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The name the calling master sent in its ``arko-master`` header ("" without one)."""
    for key, value in context.invocation_metadata() or ():
        if key == MASTER_HEADER:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return ""
