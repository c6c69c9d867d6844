"""Read a slave's ``arko.v1.Slave/Status`` (capacity, labels, version) when it is pinged.

Slaves without the service (the original Go slave, any gRPC server with
reflection) answer UNIMPLEMENTED: they get no limit and no labels, and work
exactly as before.
"""

from __future__ import annotations

import grpc

from arko.master.slaves.slave import Slave
from arko.v1 import slave_pb2, slave_pb2_grpc

Metadata = tuple[tuple[str, str], ...]


async def read_status(
    channel: grpc.aio.Channel, timeout: float, metadata: Metadata
) -> slave_pb2.SlaveStatus | None:
    """The slave's status, or None when it does not serve the common service.

    Raises:
        grpc.aio.AioRpcError: any other failure (the probe judges the slave by it).
    """
    try:
        reply: slave_pb2.SlaveStatus = await slave_pb2_grpc.SlaveStub(channel).Status(
            slave_pb2.StatusRequest(), timeout=timeout, metadata=metadata
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    return reply


def apply_status(slave: Slave, status: slave_pb2.SlaveStatus | None) -> None:
    """Copy what the slave reported onto the master's view of it.

    ``running`` stays the master's own count (what it sent there); a fresh
    report replaces a refusal, since the slave now says how much room it has
    (all of it may be taken by another master's jobs).
    """
    if status is None:
        slave.capacity, slave.labels, slave.version = 0, {}, ""
        slave.refused = False
    else:
        slave.capacity = status.capacity
        slave.labels = dict(status.labels)
        slave.version = status.version
        slave.refused = 0 < status.capacity <= status.running
