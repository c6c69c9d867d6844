"""The floor of any streaming relay: ``MyPipelineLogs/Stream`` relayed as bytes, nothing else.

Each message the slave sends is written on to the caller as the same bytes:
no decoding, no JSON, no events, no records. What this costs per line is what
grpc.aio itself costs a one-hop relay (a read from the slave and a write to
the caller), so the bench measures it beside the master's ``Jobs/Run`` in the
same run: the master cannot stream faster than this, whatever it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from arko.gen import pipeline_pb2
from bench.serving import relay_flags, serve_until_signalled

SERVICE = pipeline_pb2.DESCRIPTOR.services_by_name["MyPipelineLogs"].full_name


def _same(data: bytes) -> bytes:
    return data


async def serve(host: str, port: int, slave: str) -> None:
    """Serve the relay until SIGTERM or SIGINT."""
    async with grpc.aio.insecure_channel(slave) as channel:
        call = channel.unary_stream(
            f"/{SERVICE}/Stream", request_serializer=_same, response_deserializer=_same
        )

        async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
            async for message in call(request):
                yield message

        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Stream": grpc.unary_stream_rpc_method_handler(
                    stream, request_deserializer=_same, response_serializer=_same
                )
            },
        )
        await serve_until_signalled(
            host, port, [(SERVICE, lambda srv: srv.add_generic_rpc_handlers((handler,)))]
        )


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve."""
    args = relay_flags("python -m bench.stream_relay", __doc__).parse_args(argv)
    asyncio.run(serve(args.listen_host, args.port, args.slave))


if __name__ == "__main__":
    main()
