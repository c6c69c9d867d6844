"""Who may talk to the master: the join token for slaves, a bearer token for clients.

Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from arko.common.auth import tokens_match

log = structlog.get_logger("arko.master.api.auth")


async def _deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "missing or wrong client token: send metadata 'authorization: Bearer <token>'",
    )


_DENY: grpc.RpcMethodHandler[Any, None] = grpc.unary_unary_rpc_method_handler(_deny)
if TYPE_CHECKING:
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


class ClientTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuse calls to the guarded services that lack the bearer token.

    Health and reflection stay open so probes and grpcurl discovery work.
    """

    def __init__(self, token: str, guarded_services: tuple[str, ...]) -> None:
        self._token = token
        self._prefixes = tuple(f"/{name}/" for name in guarded_services)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        if method.startswith(self._prefixes):
            metadata = handler_call_details.invocation_metadata or ()
            presented = next((v for k, v in metadata if k == "authorization"), "")
            scheme, _, token = str(presented).partition(" ")
            if scheme.lower() != "bearer" or not tokens_match(self._token, token.strip()):
                log.info("client_refused", method=method, reason="missing or wrong client token")
                return _DENY
        return await continuation(handler_call_details)
