"""Run one job: pick a slave, build the request, call it, render the reply.

Invocation is dynamic: request and reply classes come from the slave's
reflection catalog, and the call goes over the slave's cached channel as raw
bytes, so the master holds no generated code of any slave service.
"""

from __future__ import annotations

import grpc
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from arko.common.errors import ArkoError, NoLiveSlave, SlaveCallFailed
from arko.common.methods import parse_method_name
from arko.common.redact import redact_mapping
from arko.master.params import build_request
from arko.master.registry import Registry
from arko.master.scheduler import Scheduler
from arko.master.slaves import Slave

log = structlog.get_logger("arko.master.executor")


class Unimplemented(ArkoError):
    """The method exists but arko cannot run it (streaming)."""

    code = grpc.StatusCode.UNIMPLEMENTED


def render_reply(reply: Message) -> str:
    """The reply as grpcurl prints it: indented JSON, default fields included."""
    return json_format.MessageToJson(reply, always_print_fields_with_no_presence=True)


class Executor:
    """Runs jobs on the slaves of a ``Registry`` chosen by a ``Scheduler``."""

    def __init__(self, registry: Registry, scheduler: Scheduler, connect_timeout: float) -> None:
        self._registry = registry
        self._scheduler = scheduler
        self._connect_timeout = connect_timeout

    async def execute(self, method: str, params: dict[str, str], timeout: float | None) -> str:
        """Run ``method`` with ``params`` and return the original's status line.

        Args:
            method: ``Service.Method`` (or ``Service/Method``, ``/Service/Method``).
            params: Field name -> string value for the request message.
            timeout: Seconds the slave gets for the call, None for no deadline.

        Raises:
            ArkoError: a subclass whose ``code`` is the status to answer with.
        """
        name = parse_method_name(method)
        log.info("job_started", method=name.dotted, params=redact_mapping(params))
        # A slave we could not even connect to never saw the job, so trying
        # the next one cannot run it twice. Bounded: each pass marks one down.
        for _ in range(len(self._registry.slaves()) + 1):
            slave = self._scheduler.pick(name.dotted, self._registry.slaves())
            catalog = slave.catalog
            desc = catalog.method(name.service, name.method) if catalog else None
            if catalog is None or desc is None:
                await self._registry.probe(slave)
                continue
            if desc.client_streaming or desc.server_streaming:
                raise Unimplemented(f"{name.dotted} is a streaming method; arko runs unary methods")
            request = build_request(catalog.message_class(desc.input_type), params)
            reply_cls = catalog.message_class(desc.output_type)
            if not await slave.ensure_connected(self._connect_timeout):
                await self._registry.mark_down(slave, "cannot connect to run a job")
                continue
            reply = await self._call(slave, name.path, request, reply_cls, timeout)
            log.info("job_finished", method=name.dotted, slave=slave.address)
            return f"{method.strip()} done: Job finished with status OK: {render_reply(reply)}"
        raise NoLiveSlave(f"no slave could take {name.dotted}")

    @staticmethod
    async def _call(
        slave: Slave, path: str, request: Message, reply_cls: type[Message], timeout: float | None
    ) -> Message:
        call = slave.channel.unary_unary(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply_cls.FromString,
        )
        try:
            reply: Message = await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise SlaveCallFailed(exc.code(), slave.address, exc.details() or "") from None
        return reply
