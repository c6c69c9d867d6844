"""A slave obeys only its master.

Every pipeline call must come from the master: with mutual TLS, the caller's
certificate must carry the master's common name; otherwise the caller must
present the secret this slave handed its masters at registration (with a join
token, one any master holding the token derives from the slave's nonce, so a
master it never registered with can call it too). Secrets are compared in
constant time. ``grpc.health.v1`` is left open for probes, and
``arko.v1.Slave/ConfirmRegistration`` for a master checking a registration.
The common ``arko.v1.Slave/Status`` is guarded like a pipeline call: its
labels and load are the master's business, and a stranger gets
UNAUTHENTICATED (with ``--mode rpc`` nothing is guarded, so anyone may ask).

Server reflection answers everyone, but not alike: the master gets the full
catalog, a caller presenting a wrong call secret (a master that restarted and
does not know it yet) is refused, and everyone else gets a reflection service
that knows only the health and reflection protos. So ``grpcurl list`` and
``grpcurl ... Health/Check`` work for operators and orchestrators with no
proto file, while the pipeline services stay invisible: a stranger cannot
list them, and asking for their descriptors answers NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import structlog
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from arko.common.auth import SECRET_HEADER, tokens_match
from arko.common.interceptors import around

log = structlog.get_logger("arko.slave.guard")

# ConfirmRegistration is asked by a master that does not know this slave's
# call secret yet; its answer only confirms a nonce the caller already has.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/arko.v1.Slave/ConfirmRegistration")
REFLECTION_PREFIX = f"/{reflection.SERVICE_NAME}/"
# What a caller that is not the master may learn through reflection.
PUBLIC_PROTOS: tuple[FileDescriptor, ...] = (health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR)
if TYPE_CHECKING:
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


def public_reflection() -> reflection.aio.ReflectionServicer:
    """Reflection over a pool of its own holding only :data:`PUBLIC_PROTOS`.

    A separate pool, not just a shorter service list: grpcio-reflection
    answers symbol and file lookups from its whole pool, and the default pool
    holds every pipeline proto the slave imported.
    """
    pool = descriptor_pool.DescriptorPool()
    for file in PUBLIC_PROTOS:
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
    names = [
        service.full_name for file in PUBLIC_PROTOS for service in file.services_by_name.values()
    ]
    return reflection.aio.ReflectionServicer(names, pool=pool)


def _presented(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The call secret the caller sent, None when it sent no such header."""
    for key, value in context.invocation_metadata() or ():
        if key == SECRET_HEADER:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


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
        self._public_reflection = public_reflection()

    def _allowed(self, context: grpc.aio.ServicerContext[Any, Any]) -> bool:
        if self._master_name is not None:
            names = context.auth_context().get("x509_common_name", [])
            return self._master_name in names
        return tokens_match(self._secret, _presented(context) or "")

    async def _check(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if not self._allowed(context):
            await self._refuse(context)

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self._master_name is None and _presented(context) == "":
            # A master sends the header even before it knows the secret: it
            # restarted, and gets the secret when this slave registers again.
            reason = "a master without this slave's call secret (it gets it at registration)"
        else:
            reason = "not the master"
        log.info("caller_refused", peer=context.peer(), reason=reason)
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            f"this slave only takes calls from its master: {reason}",
        )

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        if method.startswith(REFLECTION_PREFIX):
            return self._split_reflection(handler)
        return around(handler, self._check)

    def _split_reflection(
        self, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Reflection that answers from the full catalog for the master only."""
        full: Any = handler.stream_stream  # the full servicer's async generator
        public = self._public_reflection.ServerReflectionInfo
        allowed = self._allowed

        refuse = self._refuse
        by_secret = self._master_name is None

        async def chosen(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if allowed(context):
                answer = full
            elif by_secret and _presented(context) is not None:
                # A caller claiming to be a master gets a refusal, not the
                # stranger's view: an empty catalog would read as "no methods".
                # Its first request is read first: ending the stream while an
                # asyncio client is still writing it makes that client report
                # INTERNAL "Internal error from Core" instead of this refusal
                # (grpc/grpc#36066), and a restarted master would take the
                # slave for broken rather than wait for it to register again.
                await anext(aiter(requests), None)
                await refuse(context)
                return
            else:
                answer = public
            async for reply in answer(requests, context):
                yield reply

        return handler._replace(stream_stream=chosen)  # type: ignore[attr-defined,no-any-return]
