"""A step's container settings (arko.slave.builtin.stepspec) and the podman line made of
them (arko.slave.builtin.podman), without starting podman."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from arko.common.errors import StartupError
from arko.slave.builtin.podman import NAME_PREFIX, PodmanRunner, podman_argv
from arko.slave.builtin.runners import NotRunnable
from arko.slave.builtin.steps import StepsService, plugin
from arko.slave.builtin.stepspec import StepSpec, memory_bytes
from arko.slave.settings import SlaveSettings
from tests import readme

IMAGE = "localhost/arko-base:latest"


def _spec(**fields: Any) -> StepSpec:
    return StepSpec.model_validate({"argv": ["make", "test"], "image": IMAGE, **fields})


@pytest.mark.parametrize(
    ("size", "count"),
    [("6m", 6 << 20), ("512M", 512 << 20), ("2g", 2 << 30), ("1048576k", 1 << 30)],
)
def test_memory_sizes_are_read_as_podman_reads_them(size: str, count: int) -> None:
    assert memory_bytes(size) == count


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"memory": "2gb"}, "memory '2gb' is not a size such as 512m or 2g"),
        ({"memory": "2048"}, "memory '2048' is not a size"),
        ({"memory": "1.5g"}, "memory '1.5g' is not a size"),
        ({"memory": "0m"}, "memory '0m' is not a size"),
        ({"memory": "5m"}, "below podman's least, 6m"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": -1}, "cpus"),
        ({"network": "wifi"}, "'none', 'host' or 'bridge'"),
        ({"image": ""}, "image"),
        ({"image": "arko base"}, "image"),
        ({"workdir": "src", "cwd": "."}, "give workdir or cwd, not both"),
        (
            {"image": None, "memory": "1g"},
            "a step without an image has no container to give memory",
        ),
        (
            {"image": None, "network": "none", "cpus": 1},
            "has no container to give network, cpus",
        ),
    ],
)
def test_bad_container_settings_are_refused(fields: dict[str, Any], said: str) -> None:
    """Each mistake is a start-up error saying what is wrong."""
    with pytest.raises(ValidationError) as caught:
        _spec(**fields)
    assert said in str(caught.value)


def test_a_step_without_an_image_keeps_its_defaults() -> None:
    spec = StepSpec.model_validate({"argv": ["true"]})
    assert (spec.image, spec.workdir, spec.network, spec.memory, spec.cpus) == (
        None,
        None,
        "none",
        None,
        None,
    )


def test_podman_line_carries_every_setting() -> None:
    """Network, mount, cwd, limits (swap no larger than memory), env names only, then
    the image and the command."""
    spec = _spec(network="bridge", memory="2g", cpus=1.5, env={"LANG": "C.UTF-8", "CI": "1"})
    argv = podman_argv("/usr/bin/podman", "arko-step-x", spec, Path("/src/app"), ["make", "test"])
    assert argv == [
        *("/usr/bin/podman", "run", "--rm", "--init", "--name", "arko-step-x"),
        *("--network", "bridge", "--volume", "/src/app:/work", "--workdir", "/work"),
        *("--memory", "2g", "--memory-swap", "2g", "--cpus", "1.5"),
        *("--env", "LANG", "--env", "CI"),
        *(IMAGE, "make", "test"),
    ]
    assert "C.UTF-8" not in argv


def test_podman_line_defaults_to_no_network_and_no_limits() -> None:
    argv = podman_argv("podman", "n", _spec(), Path("/w"), ["true"])
    assert argv == [
        *("podman", "run", "--rm", "--init", "--name", "n", "--network", "none"),
        *("--volume", "/w:/work", "--workdir", "/work", IMAGE, "true"),
    ]


def test_each_launch_has_a_container_of_its_own(tmp_path: Path) -> None:
    """Unique names; podman starts in a scratch folder, never the workdir."""
    runner = PodmanRunner("/usr/bin/podman")
    one, two = (runner.launch("unit", _spec(), ["true"], tmp_path, {}) for _ in range(2))
    assert one.name != two.name
    assert one.name.startswith(NAME_PREFIX) and one.facts == {"container": one.name}
    assert one.argv[one.argv.index("--name") + 1] == one.name
    assert one.cwd != tmp_path and one.cwd.is_dir()


@pytest.mark.parametrize(("folder", "said"), [("missing", "is not a folder"), ("a:b", "colon")])
def test_an_unusable_workdir_is_a_failed_precondition(
    tmp_path: Path, folder: str, said: str
) -> None:
    (tmp_path / "a:b").mkdir()
    with pytest.raises(NotRunnable, match=said):
        PodmanRunner("podman").launch("unit", _spec(), ["true"], tmp_path / folder, {})


def test_python_means_the_images_python3_in_a_container() -> None:
    """{python} is the slave's interpreter on the host, python3 in a container."""
    argv = ["{python}", "-V"]
    steps = {"host": StepSpec(argv=argv), "boxed": _spec(argv=argv)}
    service = StepsService(steps, Path("."), containers=PodmanRunner("podman"))
    assert service.command("boxed", {}) == ["python3", "-V"]
    assert service.command("host", {}) == [sys.executable, "-V"]


def test_an_image_on_the_inprocess_engine_is_a_start_up_error() -> None:
    settings = SlaveSettings(steps={"unit": _spec()})
    with pytest.raises(StartupError, match=r"step 'unit' names the image .* --engine podman"):
        plugin(settings)


def test_the_manuals_example_is_a_valid_configuration() -> None:
    """The step the manual shows under "Steps in containers" loads as written."""
    text = readme.section("Steps in containers", "docs/pipelines.md")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    steps = tomllib.loads(block)["steps"]
    spec = StepSpec.model_validate(steps["unit"])
    assert (spec.image, spec.network, spec.memory, spec.cpus) == (IMAGE, "none", "2g", 1)
