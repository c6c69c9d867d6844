"""Tests of arko.master.jobs.scheduler.FirstLiveScheduler, with fake slaves."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from arko.common.errors import MethodNotFound, NoLiveSlave
from arko.master.jobs.scheduler import FirstLiveScheduler


@dataclass(frozen=True)
class FakeSlave:
    """The three things a scheduler may look at."""

    address: str
    live: bool
    methods: tuple[str, ...] = ("MyPipeline.Run",)


RUN = "MyPipeline.Run"


def test_first_live_slave_in_order_wins() -> None:
    """Of several live slaves exposing the method, the earliest registered is picked."""
    slaves = [FakeSlave("a:1", True), FakeSlave("b:2", True), FakeSlave("c:3", True)]
    assert FirstLiveScheduler().pick(RUN, slaves) is slaves[0]


def test_dead_slaves_are_skipped() -> None:
    """Slaves that are down are passed over for the next live one."""
    slaves = [FakeSlave("a:1", False), FakeSlave("b:2", False), FakeSlave("c:3", True)]
    assert FirstLiveScheduler().pick(RUN, slaves) is slaves[2]


def test_slaves_without_the_method_are_skipped() -> None:
    """A live slave that does not expose the method is never picked."""
    slaves = [
        FakeSlave("a:1", True, ("MyPipeline.DryRun",)),
        FakeSlave("b:2", False),
        FakeSlave("c:3", True, ("Other.Run", RUN)),
    ]
    assert FirstLiveScheduler().pick(RUN, slaves) is slaves[2]


def test_method_is_matched_exactly() -> None:
    """A method name that merely starts like an exposed one does not match."""
    slaves = [FakeSlave("a:1", True, ("MyPipeline.RunAll",))]
    with pytest.raises(MethodNotFound):
        FirstLiveScheduler().pick(RUN, slaves)


@pytest.mark.parametrize("slaves", [[], [FakeSlave("a:1", True, ("Other.Run",))]])
def test_nobody_exposing_the_method_is_not_found(slaves: list[FakeSlave]) -> None:
    """When no slave exposes the method the answer is NOT_FOUND, naming the method."""
    with pytest.raises(MethodNotFound) as caught:
        FirstLiveScheduler().pick(RUN, slaves)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert RUN in caught.value.message


def test_only_dead_slaves_exposing_it_is_unavailable() -> None:
    """When only down slaves expose the method the answer is UNAVAILABLE, listing them."""
    slaves = [
        FakeSlave("a:1", False),
        FakeSlave("b:2", True, ("Other.Run",)),
        FakeSlave("[::1]:3", False),
    ]
    with pytest.raises(NoLiveSlave) as caught:
        FirstLiveScheduler().pick(RUN, slaves)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert RUN in caught.value.message
    assert "a:1, [::1]:3" in caught.value.message
    assert "b:2" not in caught.value.message
