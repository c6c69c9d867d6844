"""arko as a user installs it: the wheel and the sdist carry the built web UI (issue 21, item 4).

A master installed from a wheel has no checkout around it; it must serve the
real UI, on the default listen host, to IPv4 and IPv6 clients alike.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from arko.testing import free_port, wait_until
from dogfood.steps import install
from tests.locks import checkout_build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.one_pass("builds and installs the checkout; the master in it runs on SQLite"),
]

ROOT = Path(__file__).resolve().parents[2]
INDEX = ROOT / "ui" / "dist" / "index.html"
PACKAGED_INDEX = "arko/master/api/http/ui/index.html"
# A PATH with Python and no npm: what a machine without Node.js has.
NO_NODE_PATH = str(Path(sys.executable).parent)


def _pip_wheel(
    source: Path, out: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``pip wheel --no-deps source`` into ``out``, with ``path`` as PATH when given."""
    env = {**os.environ, "PATH": path} if path is not None else None
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _only(folder: Path, pattern: str) -> Path:
    found = list(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


@dataclass
class Installed:
    """A master started from a fresh virtualenv holding only the wheel and its dependencies."""

    venv: Path
    http_port: int


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the checkout's wheel, install it, start its arko-master on the default host.

    No ``--listen_host``: the master listens where a user's would. It runs in
    a folder away from the checkout, and is stopped by its PID at the end.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    with checkout_build():
        built = _pip_wheel(ROOT, tmp / "wheels")
    assert built.returncode == 0, built.stderr
    venv = tmp / "venv"
    install(_only(tmp / "wheels", "arko_ci-*.whl"), venv)
    http_port = free_port()
    log = tmp / "master.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(venv / "bin" / "arko-master"),
                "--port",
                str(free_port()),
                "--http_port",
                str(http_port),
                "--db",
                str(tmp / "arko.db"),
                "--log_format",
                "json",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    try:
        wait_until(
            lambda: proc.poll() is not None or "http_started" in log.read_text(),
            60,
            "the installed master to serve HTTP",
        )
        assert proc.poll() is None, log.read_text()
        yield Installed(venv, http_port)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.timeout(600)  # builds a wheel and installs it with its dependencies
@pytest.mark.parametrize("host", ["[::1]", "127.0.0.1"])
def test_installed_master_serves_the_ui_on_the_default_host(
    installed: Installed, host: str
) -> None:
    """GET / through IPv6 and IPv4 loopback gives the built UI's index.html."""
    with urllib.request.urlopen(f"http://{host}:{installed.http_port}/", timeout=10) as page:
        assert page.read() == INDEX.read_bytes()


def test_installed_commands_report_the_wheel_version(installed: Installed) -> None:
    """The wheel's own metadata answers --version, outside any checkout."""
    done = subprocess.run(
        [str(installed.venv / "bin" / "arko-master"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    expected = f"arko-master {importlib.metadata.version('arko-ci')}\n"
    assert (done.returncode, done.stdout) == (0, expected), done.stderr


@pytest.mark.timeout(600)
def test_sdist_carries_the_ui_and_builds_a_wheel_without_node(tmp_path: Path) -> None:
    """The sdist holds ui/dist; a wheel built from it, with no npm on PATH, ships the UI."""
    build = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    with checkout_build():
        done = subprocess.run(
            [sys.executable, "-c", build, str(tmp_path / "sdist")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr
    with tarfile.open(_only(tmp_path / "sdist", "arko_ci-*.tar.gz")) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        assert f"{top}/ui/dist/index.html" in sdist.getnames()
        sdist.extractall(tmp_path, filter="data")
    built = _pip_wheel(tmp_path / top, tmp_path / "wheels", path=NO_NODE_PATH)
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(_only(tmp_path / "wheels", "arko_ci-*.whl")) as wheel:
        assert wheel.read(PACKAGED_INDEX) == INDEX.read_bytes()


@pytest.mark.timeout(600)
def test_building_without_a_built_ui_or_node_says_what_is_missing(tmp_path: Path) -> None:
    """A source tree with the UI's sources but no ui/dist, on a machine without npm, fails
    the build with a sentence naming Node.js and npm, instead of a wheel with no UI."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "node_modules", "dist")
    shutil.copytree(ROOT / "arko", source / "arko", ignore=skip)
    shutil.copytree(ROOT / "ui", source / "ui", ignore=skip)
    built = _pip_wheel(source, tmp_path / "wheels", path=NO_NODE_PATH)
    assert built.returncode != 0
    assert "needs Node.js 20.19+ with npm, and npm is not on PATH" in built.stdout + built.stderr
    assert not list((tmp_path / "wheels").glob("*.whl"))
