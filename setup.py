"""Builds the web UI into arko's wheel and sdist; the rest of the build is in pyproject.toml.

A master installed from a wheel has no checkout, so no ``ui/dist`` to serve:
the built UI travels inside the package, as ``arko/master/api/http/ui``. Building
the sdist or the wheel first builds ``ui/dist`` with npm when it is missing;
the sdist carries ``ui/dist`` (MANIFEST.in), so a wheel built from it needs no
Node.js. An editable install (``make venv``) copies nothing: the master then
serves the checkout's ``ui/dist``, which ``make ui`` rebuilds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import ExecError

UI = Path(__file__).resolve().parent / "ui"
BUILT = UI / "dist"
# Where the master looks first (arko.master.api.http.server.PACKAGED_UI).
PACKAGED = Path("arko", "master", "api", "http", "ui")
NO_NODE = (
    "building arko's wheel or sdist builds its web UI (ui/) first, which needs Node.js "
    "20.19+ with npm, and npm is not on PATH: install them (https://nodejs.org/en/download, "
    "or your distribution's nodejs and npm if 20.19+), or build the UI with `make ui` first"
)


def built_ui() -> Path:
    """``ui/dist``, built with ``npm ci`` and ``npm run build`` when it is missing."""
    if (BUILT / "index.html").is_file():
        return BUILT
    if not (UI / "package.json").is_file():
        raise ExecError(f"no built web UI in {BUILT} and no UI sources in {UI} to build it from")
    npm = shutil.which("npm")
    if npm is None:
        raise ExecError(NO_NODE)
    for args in (["ci"], ["run", "build"]):
        code = subprocess.run([npm, *args], cwd=UI, check=False).returncode
        if code != 0:
            raise ExecError(
                f"building the web UI failed: `npm {' '.join(args)}` in {UI} exited {code}"
            )
    return BUILT


class BuildPyWithUi(build_py):
    """build_py, then the built UI copied into the package (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib, PACKAGED)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built_ui(), target)


class SdistWithUi(sdist):
    """sdist with ``ui/dist`` built first, so MANIFEST.in's graft finds it."""

    def run(self) -> None:
        built_ui()
        super().run()


setup(cmdclass={"build_py": BuildPyWithUi, "sdist": SdistWithUi})
