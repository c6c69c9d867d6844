"""The original's executor design, kept as a yardstick: ``python -m bench.naive``.

The Go prototype dialled the slave and re-read its server reflection for
every job. :func:`naive_execute` does exactly that with arko's own pieces
(``discover``, ``build_request``, a dynamic unary call), and this module also
serves it behind ``Execution/ExecuteJob`` so the load generator drives it the
same way it drives the master: one hop, same client, same reply text. The
only difference left is what the issue asks to price -- caching the channel
and the descriptors per slave.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from arko.common.errors import ArkoError, InvalidArgument
from arko.common.methods import parse_method_name
from arko.gen import execution_pb2, execution_pb2_grpc
from arko.master.jobs.params import build_request
from arko.master.jobs.render import ReplyTree
from arko.master.slaves.discovery import discover
from bench.serving import relay_flags, serve_execution


async def naive_execute(address: str, method: str, params: dict[str, str], timeout: float) -> str:
    """Run one job the prototype's way: new channel, fresh reflection, call, close.

    Raises:
        ArkoError: the method is unknown or a parameter does not fit.
        grpc.aio.AioRpcError: the slave failed the call.
    """
    name = parse_method_name(method)
    async with grpc.aio.insecure_channel(address) as channel:
        catalog = await discover(channel, timeout)
        desc = catalog.method(name.service, name.method)
        if desc is None:
            raise InvalidArgument(f"{address} does not serve {name.dotted}")
        request = build_request(catalog.message_class(desc.input_type), params)
        reply_cls = catalog.message_class(desc.output_type)
        call = channel.unary_unary(
            name.path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply_cls.FromString,
        )
        reply = await call(request, timeout=timeout)
    return f"{method.strip()} done: Job finished with status OK: {ReplyTree.of(reply).indented()}"


class NaiveExecution(execution_pb2_grpc.ExecutionServicer):
    """``Execution.ExecuteJob`` relayed to one slave with :func:`naive_execute`."""

    def __init__(self, slave: str, timeout: float) -> None:
        self._slave = slave
        self._timeout = timeout

    async def ExecuteJob(
        self, request: execution_pb2.JobParams, context: grpc.aio.ServicerContext[Any, Any]
    ) -> execution_pb2.JobStatus:
        try:
            message = await naive_execute(
                self._slave, request.method, dict(request.params), self._timeout
            )
        except ArkoError as exc:
            await context.abort(exc.code, exc.message)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), f"slave {self._slave}: {exc.details()}")
        return execution_pb2.JobStatus(message=message)


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve."""
    parser = relay_flags("python -m bench.naive", __doc__)
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of one job")
    args = parser.parse_args(argv)
    servicer = NaiveExecution(args.slave, args.timeout)
    asyncio.run(serve_execution(args.listen_host, args.port, servicer))


if __name__ == "__main__":
    main()
