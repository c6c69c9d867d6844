"""The slave's Prometheus metrics: running jobs, capacity, calls by method and outcome.

A server interceptor counts the calls of the plug-in services (not health,
reflection or status), so no plug-in and no servicer has to know about it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


class SlaveMetrics:
    """Every metric family of one slave, in a registry of its own."""

    def __init__(self, capacity: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge(
            "arko_slave_running_jobs", "Calls running on this slave now", registry=r
        )
        self.capacity = Gauge(
            "arko_slave_capacity", "Most calls this slave runs at once (0: no limit)", registry=r
        )
        self.capacity.set(capacity)
        self.calls = Counter(
            "arko_slave_calls",
            "Calls of pipeline methods that ended, by method and outcome (gRPC code)",
            ["method", "outcome"],
            registry=r,
        )


def _outcome(context: Context, error: BaseException | None) -> str:
    """The call's status code name, lowercased (``ok``, ``cancelled``, ...)."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        return str(code.name).lower() if isinstance(code, grpc.StatusCode) else "unknown"
    return "unknown" if error is not None else "ok"


class CallMetrics(grpc.aio.ServerInterceptor):
    """Count calls of ``services`` (full names): running now, and ended by outcome."""

    def __init__(self, metrics: SlaveMetrics, services: Collection[str]) -> None:
        self._m = metrics
        self._prefixes = tuple(f"/{name}/" for name in services)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        path: str = handler_call_details.method
        if handler is None or not path.startswith(self._prefixes):
            return handler
        method = path.lstrip("/").replace("/", ".")
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming: arko never calls it

    def _ended(self, method: str, context: Context, error: BaseException | None) -> None:
        self._m.running.dec()
        self._m.calls.labels(method, _outcome(context, error)).inc()

    def _unary(self, behavior: Any, method: str) -> Any:
        async def call(request: Any, context: Context) -> Any:
            self._m.running.inc()
            try:
                reply = await behavior(request, context)
            except BaseException as exc:
                self._ended(method, context, exc)
                raise
            self._ended(method, context, None)
            return reply

        return call

    def _stream(self, behavior: Any, method: str) -> Any:
        if not inspect.isasyncgenfunction(behavior) and not inspect.isasyncgenfunction(
            getattr(behavior, "__func__", None)
        ):
            # A servicer that writes with context.write() and returns.
            return self._unary(behavior, method)

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            self._m.running.inc()
            try:
                async for message in behavior(request, context):
                    yield message
            except BaseException as exc:
                self._ended(method, context, exc)
                raise
            self._ended(method, context, None)

        return stream
