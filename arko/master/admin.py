"""What an operator asks a master: its slaves, a method's fields, forget a slave, a backup.

The core of ``arko.v1.Admin`` (:mod:`arko.master.api.admin` only maps
errors); it reads the registry's memory and the slaves' reflected descriptors,
and copies the database with SQLite's online backup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from google.protobuf import descriptor, descriptor_pb2

from arko.common.errors import MethodNotFound
from arko.common.methods import parse_method_name
from arko.common.redact import is_secret_name
from arko.master.jobs.policy import job_policy
from arko.master.slaves.discovery import Catalog
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.master.store.private_files import private_copy_path, remove_copy
from arko.v1 import admin_pb2

DEFAULT_CHUNK = 1024 * 1024
MAX_CHUNK = 3 * 1024 * 1024  # under gRPC's default 4 MiB message limit
# FileDescriptorProto field numbers: message_type = 4, nested_type = 3,
# field = 2, service = 6, method = 2 (the paths of SourceCodeInfo).
_MESSAGE, _NESTED, _FIELD, _SERVICE, _METHOD = 4, 3, 2, 6, 2


class Copyable(Protocol):
    """A store that can write a consistent copy of itself (SQLite's online backup)."""

    async def backup(self, target: Path) -> None:
        """Write the copy to ``target``; raise ArkoError when it cannot."""
        ...


def _type_name(field: descriptor.FieldDescriptor) -> str:
    if field.type == descriptor.FieldDescriptor.TYPE_ENUM:
        return "enum"
    if field.type in (
        descriptor.FieldDescriptor.TYPE_MESSAGE,
        descriptor.FieldDescriptor.TYPE_GROUP,
    ):
        return "message"
    name: str = descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)  # type: ignore[arg-type]
    return name.removeprefix("TYPE_").lower()


def _default(field: descriptor.FieldDescriptor) -> str:
    """The value a field left out takes, as text (messages and lists: empty)."""
    if field.is_repeated or field.message_type is not None:
        return ""
    if field.enum_type is not None:
        number = field.enum_type.values_by_number.get(field.default_value or 0)
        return str((number or field.enum_type.values[0]).name)
    value = field.default_value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


class _Comments:
    """Leading comments of one file's elements, when its descriptors kept source info.

    Slaves built from ``protoc`` output usually strip it; servers that ship
    full descriptors keep it.
    """

    def __init__(self, catalog: Catalog, file: descriptor.FileDescriptor) -> None:
        self._catalog = catalog
        self._file = file.name

    def get(self, path: Sequence[int]) -> str:
        return self._catalog.comments.get((self._file, tuple(path)), "")


def _message_path(message: descriptor.Descriptor) -> list[int]:
    """SourceCodeInfo path of a message: [4, i] or [4, i, 3, j, ...]."""
    parent = message.containing_type
    if parent is None:
        top = list(message.file.message_types_by_name.values())
        return [_MESSAGE, top.index(message)]
    return [*_message_path(parent), _NESTED, list(parent.nested_types).index(message)]


def _field_info(
    field: descriptor.FieldDescriptor, comments: _Comments, path: list[int]
) -> admin_pb2.FieldInfo:
    info = admin_pb2.FieldInfo(
        name=field.name,
        json_name=field.json_name,
        type=_type_name(field),
        repeated=field.is_repeated,
        default=_default(field),
        comment=comments.get([*path, _FIELD, field.index]),
        secret=is_secret_name(field.name),
        number=field.number,
    )
    if field.message_type is not None:
        info.type_name = field.message_type.full_name
        info.map = field.message_type.GetOptions().map_entry
    if field.enum_type is not None:
        info.type_name = field.enum_type.full_name
        info.enum_values.extend(v.name for v in field.enum_type.values)
    return info


def _messages(catalog: Catalog, root: descriptor.Descriptor) -> list[admin_pb2.MessageInfo]:
    """``root`` and every message type it reaches, once each, breadth first."""
    seen: dict[str, admin_pb2.MessageInfo] = {}
    queue = [root]
    while queue:
        message = queue.pop(0)
        if message.full_name in seen:
            continue
        comments = _Comments(catalog, message.file)
        path = _message_path(message)
        seen[message.full_name] = admin_pb2.MessageInfo(
            full_name=message.full_name,
            comment=comments.get(path),
            fields=[_field_info(f, comments, path) for f in message.fields],
        )
        queue.extend(f.message_type for f in message.fields if f.message_type is not None)
    return list(seen.values())


class Admin:
    """Operator requests on one master.

    Args:
        registry: The master's slaves.
        store: The database to back up.
        flush: Awaited before a backup, so records of the last second are in it.
        patience: Seconds a description waits for a slave offering the method
            to register again after a restart (as a job waits for it).
        scratch: Folder for the backup's temporary file (None: the system's).
    """

    def __init__(
        self,
        registry: Registry,
        store: Copyable,
        flush: Callable[[], Awaitable[None]],
        patience: float = 0.0,
        scratch: Path | None = None,
    ) -> None:
        self._registry = registry
        self._patience = patience
        self._store = store
        self._flush = flush
        self._scratch = scratch

    def slaves(self) -> Sequence[Slave]:
        """Every slave, in registration order."""
        return self._registry.slaves()

    async def describe(self, method: str) -> admin_pb2.MethodInfo:
        """A method's request fields, nested types and job policy, from a slave's descriptors.

        Raises:
            InvalidArgument: the name is not ``Service.Method``.
            MethodNotFound: no slave offers it.
            NoLiveSlave: slaves offer it, but none could be read (yet): see
                :meth:`Registry.described`.
        """
        name = parse_method_name(method)
        for slave in await self._registry.described(name.dotted, self._patience):
            catalog = slave.catalog
            desc = catalog.method(name.service, name.method) if catalog is not None else None
            if catalog is None or desc is None:
                continue
            service = desc.containing_service
            comments = _Comments(catalog, service.file)
            services = list(service.file.services_by_name.values())
            path = [_SERVICE, services.index(service), _METHOD, desc.index]
            return admin_pb2.MethodInfo(
                method=name.dotted,
                request_type=desc.input_type.full_name,
                response_type=desc.output_type.full_name,
                server_streaming=desc.server_streaming,
                client_streaming=desc.client_streaming,
                messages=_messages(catalog, desc.input_type),
                policy=job_policy(catalog, name.dotted),
                slaves=[s.address for s in self._registry.offering(name.dotted)],
                comment=comments.get(path),
            )
        raise MethodNotFound(f"no slave offering {name.dotted} describes it by reflection")

    async def remove(self, address: str) -> Slave:
        """Forget a slave (see :meth:`Registry.remove`)."""
        return await self._registry.remove(address)

    async def backup(self, chunk_bytes: int = 0) -> AsyncIterator[tuple[bytes, int]]:
        """A consistent copy of the database as (chunk, total size) pairs.

        The copy is taken whole into a temporary file first (SQLite's backup
        API, one snapshot), then read out; the file is 0600 in a 0700 folder
        of its own, and both are removed at the end even when the caller
        goes away.
        """
        size = min(chunk_bytes or DEFAULT_CHUNK, MAX_CHUNK)
        await self._flush()
        path = await asyncio.to_thread(private_copy_path, self._scratch)
        try:
            await self._store.backup(path)
            total = (await asyncio.to_thread(path.stat)).st_size
            offset = 0
            while chunk := await asyncio.to_thread(_read_at, path, offset, size):
                offset += len(chunk)
                yield chunk, total
        finally:
            with contextlib.suppress(OSError):
                remove_copy(path)


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as copy:
        copy.seek(offset)
        return copy.read(size)
