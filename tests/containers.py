"""podman for the tests of container steps: reachable, or the test fails saying why.

These tests are never skipped quietly: with no podman, a podman that does not
answer or no base image, each fails with the reason and the fix (``make
containers``, ``make image-base``). ``ARKO_TEST_CONTAINERS=off`` skips them, for
a machine known to have no container engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

OFF = "off"
SWITCH = "ARKO_TEST_CONTAINERS"
IMAGE = "localhost/arko-base:latest"
# The repository's settings for hosts like arko's CI machines (runc, ulimits),
# used when the environment names none, as the Makefile does.
CONF = Path(__file__).resolve().parent.parent / "containers" / "containers.conf"


def podman_env() -> dict[str, str]:
    """Variables a slave or a podman command of the tests gets: CONTAINERS_CONF."""
    return {"CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONF))}


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` with the tests' settings."""
    return subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **podman_env()},
    )


def require_podman() -> None:
    """Fail the test (skip it only when ARKO_TEST_CONTAINERS=off) unless podman and
    the base image are there."""
    if os.environ.get(SWITCH) == OFF:
        pytest.skip(f"{SWITCH}=off: container tests skipped on purpose")
    fix = f"run make containers image-base, or set {SWITCH}=off on a machine with no podman"
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not on PATH: {fix}", pytrace=False)
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}")
    if info.returncode != 0:
        pytest.fail(f"`podman info` failed: {info.stderr.strip()[-500:]}; {fix}", pytrace=False)
    if podman("image", "exists", IMAGE).returncode != 0:
        pytest.fail(f"the image {IMAGE} is missing: {fix}", pytrace=False)


def containers_named(name: str) -> list[str]:
    """Containers called exactly ``name``, running or not (``podman ps -a``)."""
    done = podman("ps", "--all", "--filter", f"name=^{name}$", "--format", "{{.Names}}")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
