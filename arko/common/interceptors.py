"""Run code around every call of a gRPC method handler, whatever its kind.

The slave's guard and capacity gate both need the call's context before the
servicer runs (to refuse it) and, for the gate, a step once it has ended.
grpc.aio gives interceptors only the handler, so this rebuilds it with each
behaviour wrapped. Servicer methods may be plain or async, return or yield,
so results are awaited or iterated by what they turn out to be.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Enter = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


def around(
    handler: grpc.RpcMethodHandler[Any, Any],
    enter: Enter,
    leave: Callable[[], None] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with ``enter(context)`` awaited before each call (it may abort the
    call) and, once ``enter`` has returned, ``leave()`` run when the call ends."""

    def unary(inner: Any) -> Any:
        async def wrapped(request: Any, context: Any) -> Any:
            await enter(context)
            try:
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result
            finally:
                if leave is not None:
                    leave()

        return wrapped

    def streaming(inner: Any) -> Any:
        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            await enter(context)
            try:
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    for item in result:
                        yield item
            finally:
                if leave is not None:
                    leave()

        return wrapped

    replace = handler._replace  # type: ignore[attr-defined]
    if handler.unary_unary is not None:
        return replace(unary_unary=unary(handler.unary_unary))  # type: ignore[no-any-return]
    if handler.stream_unary is not None:
        return replace(stream_unary=unary(handler.stream_unary))  # type: ignore[no-any-return]
    if handler.unary_stream is not None:
        return replace(unary_stream=streaming(handler.unary_stream))  # type: ignore[no-any-return]
    return replace(stream_stream=streaming(handler.stream_stream))  # type: ignore[no-any-return]
