"""Who may talk to the master: the join token for slaves, a bearer token for
clients, a job token for a job's own children.

Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from arko.common.auth import JOB_ID_HEADER, JOB_TOKEN_HEADER, tokens_match
from arko.master.jobs.tokens import ONLY_CHILDREN

log = structlog.get_logger("arko.master.api.auth")

# The only calls a job token may make (each further checked by the Jobs
# servicer against the token's own job).
JOB_TOKEN_METHODS = frozenset(
    f"/arko.v1.Jobs/{name}" for name in ("Run", "Get", "Watch", "Cancel", "List")
)


def _denier(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler[Any, None]:
    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(deny)


_DENY = _denier(
    grpc.StatusCode.UNAUTHENTICATED,
    "missing or wrong client token: send metadata 'authorization: Bearer <token>'",
)
_OUT_OF_REACH = _denier(
    grpc.StatusCode.PERMISSION_DENIED,
    f"{ONLY_CHILDREN} (arko.v1.Jobs Run, Get, Watch, Cancel and List): nothing else",
)
if TYPE_CHECKING:
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


def job_credentials(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str, str] | None:
    """(job id, job token) of a call that carries a job token, else None."""
    token = job_id = None
    for key, value in metadata or ():
        if key == JOB_TOKEN_HEADER:
            token = str(value)
        elif key == JOB_ID_HEADER:
            job_id = str(value)
    if token is None:
        return None
    return (job_id or "").strip(), token.strip()


class ClientTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuse calls to the guarded services that lack the bearer token, and
    keep job tokens to the calls they may make.

    A call carrying a job token needs no bearer token, but may only reach
    :data:`JOB_TOKEN_METHODS`; the Jobs servicer checks the token itself and
    what it reaches. Health and reflection stay open so probes and grpcurl
    discovery work.

    Args:
        token: The client bearer token (None: none is required).
        guarded_services: Services whose calls need it.
    """

    def __init__(self, token: str | None, guarded_services: tuple[str, ...]) -> None:
        self._token = token
        self._prefixes = tuple(f"/{name}/" for name in guarded_services)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        metadata = handler_call_details.invocation_metadata or ()
        if any(k == JOB_TOKEN_HEADER for k, _ in metadata):
            if method not in JOB_TOKEN_METHODS:
                log.info("job_token_refused", method=method, reason="outside a job token's reach")
                return _OUT_OF_REACH
        elif self._token is not None and method.startswith(self._prefixes):
            presented = next((v for k, v in metadata if k == "authorization"), "")
            scheme, _, token = str(presented).partition(" ")
            if scheme.lower() != "bearer" or not tokens_match(self._token, token.strip()):
                log.info("client_refused", method=method, reason="missing or wrong client token")
                return _DENY
        return await continuation(handler_call_details)
