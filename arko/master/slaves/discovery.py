"""Discover a slave's services through gRPC server reflection.

The master has no generated code for slave services: everything it knows of a
slave comes from here, as a ``Catalog`` (a private descriptor pool plus the
method list). Reflection ``v1`` is asked first and ``v1alpha`` second; the two
protocols' messages are identical on the wire, so grpcio-reflection's
``v1alpha`` classes serve both. grpcio-reflection's own client-side descriptor
database is blocking, so this speaks the stream over ``grpc.aio`` itself.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from grpc_reflection.v1alpha import reflection_pb2

from arko.common.errors import ArkoError

REFLECTION_PATHS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}
# Infrastructure every slave may serve; never offered as a job.
HIDDEN_SERVICES = frozenset(
    {
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.health.v1.Health",
        "arko.v1.Slave",  # the common slave service: the master reads it when it pings
    }
)
# A slave answering with more than this is broken or hostile.
MAX_FILES = 2000
MAX_SERVICES = 500
# grpc.aio may turn an unanswered v1 request into INTERNAL instead of
# UNIMPLEMENTED (grpc/grpc#36066): both mean "try the older protocol".
_FALLBACK_CODES = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL})


Metadata = tuple[tuple[str, str], ...] | None


class DiscoveryError(ArkoError):
    """Reflection failed or answered something unusable; the message says what."""

    code = grpc.StatusCode.UNAVAILABLE


@dataclass(slots=True, weakref_slot=True)
class Catalog:
    """What one slave serves: its descriptors and its ``Service.Method`` names.

    Slaves serving the same files share one (see :class:`Catalogs`): nothing
    in it belongs to one slave, and its message classes are built once for all.
    """

    protocol: str
    pool: descriptor_pool.DescriptorPool
    methods: tuple[str, ...]
    fingerprint: bytes
    # (file name, SourceCodeInfo path) -> leading comment, for operators'
    # DescribeMethod; empty unless the slave's descriptors kept source info
    # (a pool drops it, so it is taken from the files here).
    comments: dict[tuple[str, tuple[int, ...]], str] = field(default_factory=dict)
    _classes: dict[str, type[Message]] = field(default_factory=dict)

    def method(self, service: str, method: str) -> descriptor.MethodDescriptor | None:
        """The method's descriptor, or None when this slave does not serve it."""
        try:
            svc = self.pool.FindServiceByName(service)
        except KeyError:
            return None
        return svc.methods_by_name.get(method)

    def message_class(self, desc: descriptor.Descriptor) -> type[Message]:
        """A message class for ``desc``, built once per catalog."""
        cls = self._classes.get(desc.full_name)
        if cls is None:
            cls = message_factory.GetMessageClass(desc)
            self._classes[desc.full_name] = cls
        return cls


class Catalogs:
    """The catalogs in use, one per distinct set of files: a fleet of slaves
    serving the same services holds one descriptor pool, not one each.

    A catalog is kept while some slave holds it (weak references), so a
    service no slave serves any more leaves nothing behind.
    """

    def __init__(self) -> None:
        self._by_key: weakref.WeakValueDictionary[tuple[str, bytes], Catalog] = (
            weakref.WeakValueDictionary()
        )

    def get(self, protocol: str, fingerprint: bytes) -> Catalog | None:
        """The catalog read with ``protocol`` from files hashing to ``fingerprint``, if held."""
        return self._by_key.get((protocol, fingerprint))

    def keep(self, catalog: Catalog) -> Catalog:
        """``catalog``, now the one handed out for its files."""
        self._by_key[(catalog.protocol, catalog.fingerprint)] = catalog
        return catalog


def _request(**kwargs: Any) -> reflection_pb2.ServerReflectionRequest:
    return reflection_pb2.ServerReflectionRequest(**kwargs)


async def _ask(
    stream: Any, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    await stream.write(request)
    response = await stream.read()
    if response is grpc.aio.EOF:
        raise DiscoveryError("reflection stream closed before answering")
    if not isinstance(response, reflection_pb2.ServerReflectionResponse):
        # grpc.aio hands back None when the bytes do not parse.
        raise DiscoveryError("reflection answered with bytes that are not a reflection message")
    if response.HasField("error_response"):
        err = response.error_response
        raise DiscoveryError(f"reflection error {err.error_code}: {err.error_message}")
    return response


def _collect(
    response: reflection_pb2.ServerReflectionResponse,
    files: dict[str, descriptor_pb2.FileDescriptorProto],
) -> None:
    if not response.HasField("file_descriptor_response"):
        raise DiscoveryError("reflection answered a file request without files")
    for raw in response.file_descriptor_response.file_descriptor_proto:
        try:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except DecodeError as exc:
            raise DiscoveryError(f"reflection sent an unreadable file descriptor: {exc}") from None
        files.setdefault(fdp.name, fdp)
    if len(files) > MAX_FILES:
        raise DiscoveryError(f"reflection sent more than {MAX_FILES} files")


async def _fetch(
    channel: grpc.aio.Channel, path: str, timeout: float, metadata: Metadata
) -> tuple[list[str], dict[str, descriptor_pb2.FileDescriptorProto]]:
    call = channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    stream = call(timeout=timeout, metadata=metadata)
    try:
        listing = await _ask(stream, _request(list_services=""))
        services = sorted(
            s.name for s in listing.list_services_response.service if s.name not in HIDDEN_SERVICES
        )
        if len(services) > MAX_SERVICES:
            raise DiscoveryError(f"reflection lists more than {MAX_SERVICES} services")
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for name in services:
            _collect(await _ask(stream, _request(file_containing_symbol=name)), files)
        missing = _missing_dependencies(files.values(), files)
        while missing:
            for name in missing:
                _collect(await _ask(stream, _request(file_by_filename=name)), files)
            still = _missing_dependencies(files.values(), files)
            if still & missing:
                raise DiscoveryError(f"reflection cannot provide {sorted(still & missing)}")
            missing = still
        await stream.done_writing()
        return services, files
    finally:
        stream.cancel()


def _missing_dependencies(
    protos: Iterable[descriptor_pb2.FileDescriptorProto], have: dict[str, Any]
) -> set[str]:
    return {dep for fdp in protos for dep in fdp.dependency if dep not in have}


def comments_of(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> dict[tuple[str, tuple[int, ...]], str]:
    """The leading comments the files' source info holds, by file name and path."""
    return {
        (fdp.name, tuple(loc.path)): loc.leading_comments.strip()
        for fdp in files
        for loc in fdp.source_code_info.location
        if loc.leading_comments.strip()
    }


def _build_pool(
    files: dict[str, descriptor_pb2.FileDescriptorProto],
) -> descriptor_pool.DescriptorPool:
    """Add files to a fresh pool, each after its dependencies."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    pending = dict(files)
    while pending:
        ready = [n for n, f in pending.items() if all(d in added for d in f.dependency)]
        if not ready:
            raise DiscoveryError(f"circular or missing imports among {sorted(pending)}")
        for name in ready:
            try:
                pool.Add(pending.pop(name))
            except (TypeError, ValueError) as exc:
                raise DiscoveryError(f"file {name} from reflection is invalid: {exc}") from None
            added.add(name)
    return pool


async def discover(
    channel: grpc.aio.Channel,
    timeout: float,
    protocol: str | None = None,
    metadata: Metadata = None,
    known: Catalog | None = None,
    shared: Catalogs | None = None,
) -> Catalog:
    """Read a slave's services over ``channel`` within ``timeout`` seconds.

    Args:
        channel: An open channel to the slave.
        timeout: Deadline for the whole reflection exchange.
        protocol: "v1" or "v1alpha" when known to work for this slave; tried alone.
        metadata: Sent with the reflection call (the slave's call secret).
        known: The slave's current catalog; returned as is when nothing changed.
        shared: Catalogs other slaves hold: one read from the same files is
            returned rather than built again (and a new one is kept there).

    Raises:
        DiscoveryError: reflection is missing, failed or answered garbage.
        grpc.aio.AioRpcError: the slave could not be reached.
    """
    order = [protocol] if protocol else ["v1", "v1alpha"]
    for i, proto in enumerate(order):
        try:
            services, files = await _fetch(channel, REFLECTION_PATHS[proto], timeout, metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _FALLBACK_CODES and i + 1 < len(order):
                continue
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise DiscoveryError("slave does not serve gRPC server reflection") from None
            raise
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(files[name].SerializeToString(deterministic=True))
        fingerprint = digest.digest()
        if known is not None and known.fingerprint == fingerprint and known.protocol == proto:
            return known  # unchanged: skip rebuilding the pool and its classes
        held = shared.get(proto, fingerprint) if shared is not None else None
        if held is not None:
            return held  # another slave serves the same files
        pool = _build_pool(files)
        methods: list[str] = []
        for name in services:
            try:
                svc = pool.FindServiceByName(name)
            except KeyError:
                raise DiscoveryError(f"reflection lists {name} but sends no descriptor") from None
            methods.extend(f"{name}.{m.name}" for m in svc.methods)
        catalog = Catalog(proto, pool, tuple(methods), fingerprint, comments_of(files.values()))
        return shared.keep(catalog) if shared is not None else catalog
    raise DiscoveryError("no reflection protocol left to try")
