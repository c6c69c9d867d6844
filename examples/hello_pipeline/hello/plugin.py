"""The Greeter servicer and the plug-in entry ``arko-slave --service hello.plugin:plugin``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc

from arko.slave.plugins import Service
from hello import hello_pb2, hello_pb2_grpc


class Greeter(hello_pb2_grpc.GreeterServicer):
    """Plain grpc.aio servicer methods: arko needs nothing more."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    async def Greet(
        self, request: hello_pb2.GreetRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> hello_pb2.Greeting:
        if not request.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is empty")
        return hello_pb2.Greeting(text=f"{self.greeting}, {request.name}!")

    async def Countdown(
        self, request: hello_pb2.CountdownRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[hello_pb2.Tick]:
        for remaining in range(request.start or 3, 0, -1):
            yield hello_pb2.Tick(remaining=remaining)
            await asyncio.sleep(request.interval)


def plugin(settings: Any) -> list[Service]:
    """What the slave serves: called once at start with the slave's settings.

    The slave's settings hold only its own (it refuses keys it does not know,
    so typos fail), so the plug-in reads its own from the environment, once.
    """
    greeter = Greeter(os.environ.get("HELLO_GREETING", "Hello"))
    return [
        Service.of(
            hello_pb2.DESCRIPTOR, "Greeter", greeter, hello_pb2_grpc.add_GreeterServicer_to_server
        )
    ]
