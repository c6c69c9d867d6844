"""Tests of the slave's registration loops with several masters, and of its call secret."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from structlog.testing import capture_logs

from arko.common.auth import call_secret
from arko.common.retry import Backoff
from arko.gen import register_pb2
from arko.slave.registration import (
    RegistrationNonces,
    new_call_secret,
    stay_registered_with_all,
)

CONFIG = register_pb2.SlaveConfig(port=7001, call_secret="s", call_nonce="n")
NO_WAIT = Backoff(initial=0, maximum=0, jitter=False)
# A bound on each test's waiting, so a broken loop fails rather than hangs.
BOUND = 10


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="no")


class FakeMaster:
    """A master link that answers as told and is lost when the test says so."""

    def __init__(
        self,
        address: str,
        refuse: bool = False,
        failing: tuple[grpc.StatusCode, ...] = (),
        refuse_after: int = 0,
    ) -> None:
        self.address = address
        self.configs: list[register_pb2.SlaveConfig] = []
        self._refuse = refuse
        self._failing = list(failing)  # answered first, one per call, as a master away would
        self._refuse_after = refuse_after
        self.watching: asyncio.Queue[None] = asyncio.Queue()  # one item per watch begun
        self._lost: asyncio.Queue[str] = asyncio.Queue()

    @property
    def registered(self) -> int:
        return len(self.configs)

    async def register(self, config: register_pb2.SlaveConfig) -> str:
        if self._failing:
            raise _error(self._failing.pop(0))
        if self._refuse or (self._refuse_after and self.registered >= self._refuse_after):
            raise _error(grpc.StatusCode.UNAUTHENTICATED)
        self.configs.append(config)
        return "done"

    async def watch(self) -> str:
        self.watching.put_nowait(None)
        return await self._lost.get()

    def lose(self, reason: str = "UNAVAILABLE: gone") -> None:
        """End the current watch, as a master that stopped."""
        self._lost.put_nowait(reason)


def _events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [x for x in logs if x["event"] == name]


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_registers_with_every_master_and_names_it() -> None:
    """Each master gets the same registration; every log line says which master it is about."""

    async def scenario() -> None:
        a, b = FakeMaster("a:1", failing=(grpc.StatusCode.UNAVAILABLE,)), FakeMaster("b:2")
        with capture_logs() as logs:
            task = asyncio.create_task(stay_registered_with_all([a, b], CONFIG, NO_WAIT))
            async with asyncio.timeout(BOUND):
                await a.watching.get()
                await b.watching.get()
            await _stop(task)
        assert a.configs == [CONFIG] and b.configs == [CONFIG]
        assert [x["master"] for x in _events(logs, "register_retry")] == ["a:1"]
        assert sorted(str(x["master"]) for x in _events(logs, "registered")) == ["a:1", "b:2"]

    asyncio.run(scenario())


def test_a_lost_master_is_registered_with_again_and_alone() -> None:
    """When one master goes away the slave registers again with it; the other is untouched."""

    async def scenario() -> None:
        a, b = FakeMaster("a:1"), FakeMaster("b:2")
        with capture_logs() as logs:
            task = asyncio.create_task(stay_registered_with_all([a, b], CONFIG, NO_WAIT))
            async with asyncio.timeout(BOUND):
                await a.watching.get()
                await b.watching.get()
                a.lose()
                await a.watching.get()  # registered again, watching again
            await _stop(task)
        assert (a.registered, b.registered) == (2, 1)
        assert [x["master"] for x in _events(logs, "master_lost")] == ["a:1"]

    asyncio.run(scenario())


def test_a_master_stopping_during_the_registration_is_tried_again() -> None:
    """A master that stops while a registration is in flight cancels the call
    (CANCELLED); that is the master going away, not a refusal, so the slave
    registers again once it is back instead of exiting. Seen in CI: a slave
    with one master exited 1 when its master was restarted at that moment."""

    async def scenario() -> None:
        away = (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        a = FakeMaster("a:1", failing=away)
        with capture_logs() as logs:
            task = asyncio.create_task(stay_registered_with_all([a], CONFIG, NO_WAIT))
            async with asyncio.timeout(BOUND):
                await a.watching.get()
            await _stop(task)
        assert a.configs == [CONFIG]
        assert [x["code"] for x in _events(logs, "register_retry")] == ["CANCELLED", "UNAVAILABLE"]
        assert not _events(logs, "register_refused")

    asyncio.run(scenario())


def test_one_refusal_leaves_the_other_masters_registered() -> None:
    """A master that refuses the slave is given up; the loop goes on with the others."""

    async def scenario() -> None:
        a, b = FakeMaster("a:1", refuse=True), FakeMaster("b:2")
        with capture_logs() as logs:
            task = asyncio.create_task(stay_registered_with_all([a, b], CONFIG, NO_WAIT))
            async with asyncio.timeout(BOUND):
                await b.watching.get()
                b.lose()
                await b.watching.get()
            assert not task.done()
            await _stop(task)
        refused = _events(logs, "register_refused")
        assert [(x["master"], x["code"]) for x in refused] == [("a:1", "UNAUTHENTICATED")]
        assert (a.registered, b.registered) == (0, 2)

    asyncio.run(scenario())


def test_returns_once_every_master_has_refused() -> None:
    """With every master refusing (one at once, one after coming back) the loop ends."""

    async def scenario() -> None:
        a, b = FakeMaster("a:1", refuse=True), FakeMaster("b:2", refuse_after=1)
        with capture_logs() as logs:
            task = asyncio.create_task(stay_registered_with_all([a, b], CONFIG, NO_WAIT))
            async with asyncio.timeout(BOUND):
                await b.watching.get()
                b.lose()
                await task
        refused = _events(logs, "register_refused")
        assert sorted(str(x["master"]) for x in refused) == ["a:1", "b:2"]

    asyncio.run(scenario())


def test_call_secret_with_a_join_token_is_derived_from_a_fresh_nonce() -> None:
    """With a join token, any master holding it can derive the secret from the nonce alone."""
    first, second = new_call_secret("join-1"), new_call_secret("join-1")
    assert first.nonce and second.nonce and first.nonce != second.nonce
    assert first.secret == call_secret("join-1", first.nonce)
    assert first.secret != call_secret("join-2", first.nonce)
    assert first.secret != second.secret


def test_call_secret_without_a_join_token_is_random_with_no_nonce() -> None:
    """Without a join token the secret is random and no nonce is sent."""
    first, second = new_call_secret(None), new_call_secret(None)
    assert (first.nonce, second.nonce) == ("", "")
    assert len(first.secret) >= 32 and first.secret != second.secret
    assert first.secret != call_secret("", "")


def test_a_slave_confirms_only_the_registration_nonces_it_sent() -> None:
    """Each registration carries a fresh nonce; a guessed, empty or old one is not confirmed."""
    nonces = RegistrationNonces(kept=2)
    config = register_pb2.SlaveConfig(host="h", port=1, call_secret="s")
    first, second = nonces.stamped(config), nonces.stamped(config)
    assert first.registration_nonce != second.registration_nonce
    assert (first.host, first.port, first.call_secret) == ("h", 1, "s")
    assert config.registration_nonce == ""  # the slave's own config is left alone
    assert nonces.confirm(first.registration_nonce) and nonces.confirm(second.registration_nonce)
    assert not nonces.confirm("guessed") and not nonces.confirm("")
    nonces.stamped(config)
    assert not nonces.confirm(first.registration_nonce)  # bounded: the oldest is dropped
