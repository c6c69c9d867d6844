"""The master's channels to slaves: a new one dials afresh.

A slave killed and restarted on its port registers again at once; the
master confirms the registration on a new channel while its old channel to
that address is still backing off. Health servers in this process on a
loopback port stand in for the two slave processes.
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from arko.master.slaves.slave import plaintext
from arko.testing import free_port


async def _serve(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def _check(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_a_new_channel_reaches_a_restarted_slave_while_the_old_one_backs_off() -> None:
    async def scenario() -> list[grpc.StatusCode]:
        address = f"127.0.0.1:{free_port()}"
        port = int(address.rsplit(":", 1)[1])
        first = await _serve(port)
        old = plaintext(address)
        codes = [await _check(old)]
        await first.stop(None)
        codes.append(await _check(old))  # refused: the old channel now backs off
        second = await _serve(port)
        new = plaintext(address)
        try:
            codes.append(await _check(new))
        finally:
            await new.close()
            await old.close()
            await second.stop(None)
        return codes

    ok, gone = grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE
    assert asyncio.run(scenario()) == [ok, gone, ok]
