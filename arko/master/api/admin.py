"""``arko.v1.Admin``: proto in, a call on :class:`arko.master.admin.Admin`, proto out."""

from __future__ import annotations

from typing import Any

import grpc

from arko.common.errors import ArkoError
from arko.master.admin import Admin
from arko.master.api.messages import job_message
from arko.master.api.servicers import abort
from arko.master.slaves.slave import Slave
from arko.master.triggers.overview import Overview, TriggerView
from arko.v1 import admin_pb2, admin_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


def slave_message(slave: Slave) -> admin_pb2.SlaveInfo:
    """A slave as ListSlaves shows it."""
    info = admin_pb2.SlaveInfo(
        address=slave.address,
        status=slave.state.name,
        reason=slave.reason,
        methods=slave.methods,
        capacity=slave.capacity,
        running=slave.running,
        labels=slave.labels,
        version=slave.version,
    )
    if slave.last_seen:
        info.last_seen.FromNanoseconds(int(slave.last_seen * 1e9))
    return info


def trigger_message(view: TriggerView) -> admin_pb2.TriggerInfo:
    """A trigger or schedule as ListTriggers (and ``/api/v1/triggers``) shows it."""
    info = admin_pb2.TriggerInfo(
        trigger=view.trigger,
        name=view.name,
        kind=view.kind,
        method=view.method,
        path=view.path,
        when=view.when,
    )
    if view.next_time is not None:
        info.next_time.FromNanoseconds(int(view.next_time * 1e9))
    if view.last_job is not None:
        info.last_job.CopyFrom(job_message(view.last_job))
    return info


class AdminServicer(admin_pb2_grpc.AdminServicer):
    """``arko.v1.Admin``: the slave list, method descriptions, forgetting, backups, triggers."""

    def __init__(self, admin: Admin, overview: Overview) -> None:
        self._admin = admin
        self._overview = overview

    async def ListSlaves(
        self, request: admin_pb2.ListSlavesRequest, context: Context
    ) -> admin_pb2.ListSlavesResponse:
        return admin_pb2.ListSlavesResponse(slaves=[slave_message(s) for s in self._admin.slaves()])

    async def DescribeMethod(
        self, request: admin_pb2.DescribeMethodRequest, context: Context
    ) -> admin_pb2.MethodInfo:
        try:
            return await self._admin.describe(request.method)
        except ArkoError as exc:
            await abort(context, exc)

    async def RemoveSlave(
        self, request: admin_pb2.RemoveSlaveRequest, context: Context
    ) -> admin_pb2.RemoveSlaveResponse:
        try:
            await self._admin.remove(request.address)
        except ArkoError as exc:
            await abort(context, exc)
        return admin_pb2.RemoveSlaveResponse()

    async def Backup(self, request: admin_pb2.BackupRequest, context: Context) -> None:
        try:
            async for data, total in self._admin.backup(request.chunk_bytes):
                await context.write(admin_pb2.BackupChunk(data=data, total_bytes=total))
        except ArkoError as exc:
            await abort(context, exc)

    async def ListTriggers(
        self, request: admin_pb2.ListTriggersRequest, context: Context
    ) -> admin_pb2.ListTriggersResponse:
        try:
            views = await self._overview.list()
        except ArkoError as exc:
            await abort(context, exc)
        return admin_pb2.ListTriggersResponse(triggers=[trigger_message(v) for v in views])
