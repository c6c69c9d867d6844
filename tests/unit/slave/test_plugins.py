"""Tests of the slave's plug-in path: arko.slave.plugins.load_plugin / load_services."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from arko.common.errors import StartupError
from arko.common.settings import load_settings
from arko.gen import pipeline_pb2
from arko.slave.plugins import Service, load_plugin, load_services
from arko.slave.settings import DEFAULT_SERVICE, SlaveSettings

# A user's plug-in module: two services of its own, one of them named like the example's.
USER_PLUGIN = textwrap.dedent(
    """
    from arko.slave.plugins import Service

    def _add(server):
        raise AssertionError("not called by these tests")

    def build(settings):
        return [Service("acme.ci.Build", _add), Service("acme.ci.Deploy", _add)]

    def clash(settings):
        return [Service("MyPipeline", _add)]

    def nothing(settings):
        return []

    NOT_CALLABLE = 42
    """
)


@pytest.fixture
def settings() -> SlaveSettings:
    """Default slave settings, as a plug-in receives them."""
    return load_settings(SlaveSettings, ["--run_delay", "0"])


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of an importable user plug-in module written for this test."""
    name = "arko_test_user_plugin"
    (tmp_path / f"{name}.py").write_text(USER_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("spec", ["arko.slave.mypipeline", "arko.slave.mypipeline:", ":plugin", ""])
def test_malformed_spec_is_refused(spec: str) -> None:
    """A spec that is not module:attr is refused, showing the expected form."""
    with pytest.raises(StartupError, match="is not of the form module:attr"):
        load_plugin(spec)


def test_missing_module_is_refused() -> None:
    """A module that cannot be imported is refused, naming it."""
    with pytest.raises(
        StartupError, match="cannot import service plug-in module 'arko_no_such_mod'"
    ):
        load_plugin("arko_no_such_mod:plugin")


def test_missing_attribute_is_refused() -> None:
    """A module without the named attribute is refused, naming the attribute."""
    with pytest.raises(StartupError, match="'nope' is missing or not callable"):
        load_plugin("arko.slave.mypipeline:nope")


def test_non_callable_attribute_is_refused(user_module: str) -> None:
    """An attribute that is not callable is refused, naming it."""
    with pytest.raises(StartupError, match="'NOT_CALLABLE' is missing or not callable"):
        load_plugin(f"{user_module}:NOT_CALLABLE")


def test_default_plugin_serves_mypipeline(settings: SlaveSettings) -> None:
    """The default spec loads the example: MyPipeline and its streaming MyPipelineLogs."""
    services = load_services([DEFAULT_SERVICE], settings)
    assert [s.name for s in services] == ["MyPipeline", "MyPipelineLogs"]
    assert callable(services[0].add)


def test_default_spec_is_what_the_settings_use(settings: SlaveSettings) -> None:
    """A slave with default settings serves the example through the plug-in path."""
    assert settings.service == [DEFAULT_SERVICE]
    assert load_plugin(settings.service[0]).__module__ == "arko.slave.mypipeline"


def test_user_plugin_is_loaded_alongside_the_example(
    user_module: str, settings: SlaveSettings
) -> None:
    """A user's module:attr plug-in adds its services, in the order the specs are given."""
    services = load_services([DEFAULT_SERVICE, f"{user_module}:build"], settings)
    assert [s.name for s in services] == [
        "MyPipeline",
        "MyPipelineLogs",
        "acme.ci.Build",
        "acme.ci.Deploy",
    ]
    assert all(isinstance(s, Service) for s in services)


def test_same_plugin_twice_is_refused(settings: SlaveSettings) -> None:
    """Loading the same plug-in twice is refused, naming the duplicate service."""
    with pytest.raises(StartupError, match="services provided twice: MyPipeline"):
        load_services([DEFAULT_SERVICE, DEFAULT_SERVICE], settings)


def test_two_plugins_with_one_service_name_are_refused(
    user_module: str, settings: SlaveSettings
) -> None:
    """Two plug-ins that both provide a service of the same name are refused."""
    with pytest.raises(StartupError, match="services provided twice: MyPipeline"):
        load_services([DEFAULT_SERVICE, f"{user_module}:clash"], settings)


@pytest.mark.parametrize("specs", [[], ["{mod}:nothing"]])
def test_no_service_at_all_is_refused(
    specs: list[str], user_module: str, settings: SlaveSettings
) -> None:
    """A slave with nothing to serve is refused, saying how to give a service."""
    with pytest.raises(StartupError, match="no service to serve"):
        load_services([s.format(mod=user_module) for s in specs], settings)


@pytest.fixture
def ungenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder (on the import path) whose package ``arkotestgreet`` has a proto
    but none of the code ``arko-protoc`` generates from it."""
    package = tmp_path / "arkotestgreet"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "greet.proto").write_text('syntax = "proto3";\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    # grpc_tools.protoc, once imported (the integration tests' conftest does),
    # compiles a missing _pb2 module from its proto at import time; a slave
    # never imports it, so neither may these tests.
    finders = [f for f in sys.meta_path if not type(f).__module__.startswith("grpc_tools")]
    monkeypatch.setattr(sys, "meta_path", finders)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("arkotestgreet")]:
        del sys.modules[name]


@pytest.mark.parametrize(
    "line",
    [
        "from arkotestgreet import greet_pb2",
        "from arkotestgreet import greet_pb2_grpc",
        "import arkotestgreet.greet_pb2",
        "from arkotestgreet.greet_pb2_grpc import GreeterServicer",
    ],
)
def test_missing_generated_code_names_the_arko_protoc_step(ungenerated: Path, line: str) -> None:
    """A plug-in importing code not generated yet is told the arko-protoc command and folder."""
    (ungenerated / "arkotestgreet" / "plugin.py").write_text(f"{line}\n")
    with pytest.raises(StartupError) as caught:
        load_plugin("arkotestgreet.plugin:plugin")
    message = str(caught.value)
    assert message.startswith("cannot import service plug-in module 'arkotestgreet.plugin': ")
    assert message.endswith(
        f"that module is generated from arkotestgreet/greet.proto: run "
        f"`arko-protoc arkotestgreet/greet.proto` in {ungenerated.resolve()} first"
    )


@pytest.mark.parametrize(
    "line",
    [
        "from arkotestgreet import other_pb2",  # no other.proto beside it
        "from arkotestgreet import helpers",  # not generated code
        "import arkotest_no_such_dependency_pb2",  # nowhere on the import path
        "raise ImportError('a plug-in of its own mind')",
    ],
)
def test_other_import_errors_do_not_blame_code_generation(ungenerated: Path, line: str) -> None:
    """Only a missing module that arko-protoc would make from a proto present mentions it."""
    (ungenerated / "arkotestgreet" / "plugin.py").write_text(f"{line}\n")
    with pytest.raises(StartupError, match="cannot import service plug-in module") as caught:
        load_plugin("arkotestgreet.plugin:plugin")
    assert "arko-protoc" not in str(caught.value)


def test_service_of_an_undeclared_service_names_the_declared_ones() -> None:
    """A service name the proto does not declare is refused at start, listing those it does."""
    with pytest.raises(
        StartupError,
        match=re.escape(
            "arko/gen/pipeline.proto declares no service 'Pipeline'; it declares: "
            "MyPipeline, MyPipelineLogs"
        ),
    ):
        Service.of(pipeline_pb2.DESCRIPTOR, "Pipeline", object(), lambda servicer, server: None)
