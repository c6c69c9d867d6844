"""A slave obeys only its master.

Every call except ``grpc.health.v1`` (left open for probes) must come from the
master: with mutual TLS, the caller's certificate must carry the master's
common name; otherwise the caller must present the secret this slave handed
the master at registration. Secrets are compared in constant time.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from arko.common.auth import SECRET_HEADER, tokens_match

log = structlog.get_logger("arko.slave.guard")

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
if TYPE_CHECKING:
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


class MasterOnly(grpc.aio.ServerInterceptor):
    """Refuse every guarded call that does not prove it comes from the master.

    Args:
        secret: The call secret given to the master at registration.
        master_name: With mutual TLS, the common name the caller's
            certificate must carry; None checks the secret instead.
    """

    def __init__(self, secret: str, master_name: str | None) -> None:
        self._secret = secret.encode()
        self._master_name = master_name.encode() if master_name is not None else None

    def _allowed(self, context: grpc.aio.ServicerContext[Any, Any]) -> bool:
        if self._master_name is not None:
            names = context.auth_context().get("x509_common_name", [])
            return self._master_name in names
        presented = next(
            (v for k, v in context.invocation_metadata() or () if k == SECRET_HEADER), ""
        )
        return tokens_match(self._secret, presented)

    async def _check(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if not self._allowed(context):
            log.info("caller_refused", peer=context.peer(), reason="not the master")
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "this slave only takes calls from its master"
            )

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        return self._wrap(handler)

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        """The same handler, with the check run first (it needs the call's context).

        Servicer methods may be plain or async, so results are awaited or
        iterated by what they turn out to be.
        """
        check = self._check

        def unary(inner: Any) -> Any:
            async def wrapped(request: Any, context: Any) -> Any:
                await check(context)
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result

            return wrapped

        def streaming(inner: Any) -> Any:
            async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
                await check(context)
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    for item in result:
                        yield item

            return wrapped

        replace = handler._replace  # type: ignore[attr-defined]
        if handler.unary_unary is not None:
            return replace(unary_unary=unary(handler.unary_unary))  # type: ignore[no-any-return]
        if handler.stream_unary is not None:
            return replace(stream_unary=unary(handler.stream_unary))  # type: ignore[no-any-return]
        if handler.unary_stream is not None:
            return replace(unary_stream=streaming(handler.unary_stream))  # type: ignore[no-any-return]
        return replace(stream_stream=streaming(handler.stream_stream))  # type: ignore[no-any-return]
