"""Tests of the NOT_FOUND suggestions: arko.common.methods, the registry and the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import pytest

from arko.common.errors import MethodNotFound
from arko.common.methods import closest_methods, method_not_found
from arko.master.jobs.scheduler import FirstLiveScheduler
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.store.rows import STATUS_LIVE, SlaveRow

KNOWN = (
    "MyPipeline.Run",
    "MyPipeline.DryRun",
    "MyPipeline.Rollback",
    "acme.ci.Build.Compile",
    "acme.ci.Build.Run",
    "arko.testing.v1.Toolbox.Echo",
)


@pytest.mark.parametrize(
    ("wanted", "meant"),
    [
        ("Build.Compile", "acme.ci.Build.Compile"),
        ("build.compile", "acme.ci.Build.Compile"),
        ("ACME.CI.BUILD.COMPILE", "acme.ci.Build.Compile"),
        ("mypipeline.run", "MyPipeline.Run"),
        ("Toolbox.Echo", "arko.testing.v1.Toolbox.Echo"),
    ],
)
def test_same_name_but_for_case_or_package_is_suggested_alone(wanted: str, meant: str) -> None:
    """Case and package aside, the method itself is the one and only suggestion."""
    assert closest_methods(wanted, KNOWN) == [meant]


def test_a_typo_finds_the_method_first() -> None:
    """A near spelling of a short name suggests the qualified method first."""
    assert closest_methods("Build.Compil", KNOWN)[0] == "acme.ci.Build.Compile"


def test_a_short_name_in_several_packages_suggests_each() -> None:
    """Build.Compile in two packages: both qualified names are offered."""
    known = ("acme.ci.Build.Compile", "other.Build.Compile", "MyPipeline.Run")
    assert closest_methods("Build.Compile", known) == [
        "acme.ci.Build.Compile",
        "other.Build.Compile",
    ]


def test_near_spellings_come_best_first_and_are_bounded() -> None:
    """A typo in the method gives at most three suggestions, the closest first."""
    found = closest_methods("MyPipeline.Rnu", KNOWN)
    assert found[0] == "MyPipeline.Run"
    assert len(found) <= 3


def test_nothing_close_lists_what_exists() -> None:
    """With no close name, the message lists methods that exist and how many more."""
    error = method_not_found("Zzz.Qqq", KNOWN)
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.message.startswith("no registered slave exposes Zzz.Qqq; exposed methods: ")
    assert "and 1 more" in error.message


def test_no_method_at_all_says_so() -> None:
    """An empty fleet is named as the reason, not a list of nothing."""
    error = method_not_found("MyPipeline.Run", ())
    assert error.message == (
        "no registered slave exposes MyPipeline.Run; no slave has offered any method yet"
    )


def test_message_names_the_suggestions_as_a_question() -> None:
    """Several suggestions read as a sentence."""
    error = method_not_found("Build.Compile", ("acme.ci.Build.Compile", "other.Build.Compile"))
    assert error.message == (
        "no registered slave exposes Build.Compile; "
        "did you mean acme.ci.Build.Compile or other.Build.Compile?"
    )


class FakeStore:
    """Just enough of ``Store`` for ``Registry.load``."""

    def __init__(self, rows: Sequence[SlaveRow]) -> None:
        self.rows = list(rows)

    async def list_slaves(self) -> list[SlaveRow]:
        return self.rows


def test_registry_offering_an_unknown_method_suggests_from_the_whole_fleet() -> None:
    """The registry knows every slave's methods, so its NOT_FOUND points at the right one."""
    rows = [
        SlaveRow(1, "127.0.0.1", 1, STATUS_LIVE, ("MyPipeline.Run",)),
        SlaveRow(2, "127.0.0.1", 2, STATUS_LIVE, ("acme.ci.Build.Compile",)),
    ]

    async def scenario() -> MethodNotFound:
        registry = Registry(FakeStore(rows), Prober(1))  # type: ignore[arg-type]
        await registry.load()
        assert [s.port for s in registry.offering("acme.ci.Build.Compile")] == [2]
        with pytest.raises(MethodNotFound) as caught:
            registry.offering("Build.Compile")
        return caught.value

    error = asyncio.run(scenario())
    assert error.message.endswith("did you mean acme.ci.Build.Compile?")


@dataclass(frozen=True)
class FakeSlave:
    address: str
    live: bool
    methods: tuple[str, ...]


def test_scheduler_suggests_from_the_slaves_it_is_given() -> None:
    """A scheduler handed slaves without the method suggests from theirs."""
    slaves = [FakeSlave("a:1", True, ("acme.ci.Build.Compile",))]
    with pytest.raises(MethodNotFound) as caught:
        FirstLiveScheduler().pick("build.compile", slaves)
    assert caught.value.message.endswith("did you mean acme.ci.Build.Compile?")
