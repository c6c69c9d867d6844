"""arko is published as ``arko-ci``: ``arko`` on PyPI is an unrelated project (issue 21, item 3).

An install line naming ``arko`` would install a stranger's package, so every
one the project shows a user must name ``arko-ci``.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
OURS = "arko-ci"
STRANGER = "arko"
# `pip install [options] NAME...`, quoted or not: the first requirement named.
PIP_INSTALL = re.compile(r"pip install\s+(?:-\S+\s+)*['\"]?([A-Za-z0-9][A-Za-z0-9._-]*)")


def _texts_with_install_lines() -> list[Path]:
    """Where a user or a developer reads or runs ``pip install`` lines."""
    found = [ROOT / "README.md", ROOT / "Makefile"]
    for folder, pattern in [
        ("docs", "**/*.md"),
        ("examples", "**/*.md"),
        ("arko", "**/*.py"),
        ("scripts", "**/*.py"),
        ("dogfood", "*"),
        ("bench", "**/*.md"),
    ]:
        found += [p for p in (ROOT / folder).glob(pattern) if p.is_file()]
    return found


def test_the_distribution_is_named_arko_ci() -> None:
    """pyproject.toml and the installed metadata say arko-ci, with the four commands."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == OURS
    installed = importlib.metadata.distribution(OURS)
    assert installed.metadata["Name"] == OURS
    commands = {e.name for e in installed.entry_points if e.group == "console_scripts"}
    assert commands == {"arko", "arko-master", "arko-slave", "arko-protoc"}


def test_no_install_line_names_the_stranger_distribution() -> None:
    """Every ``pip install NAME`` shown to users names a distribution other than ``arko``."""
    wrong = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _texts_with_install_lines()
        for match in PIP_INSTALL.finditer(path.read_text(errors="replace"))
        if canonicalize_name(match.group(1)) == STRANGER
    ]
    assert wrong == []


def test_examples_depend_on_arko_ci() -> None:
    """The examples' own packages require arko-ci, never the stranger's arko."""
    projects = list((ROOT / "examples").glob("*/pyproject.toml"))
    assert projects, "no example project found"
    for path in projects:
        dependencies = tomllib.loads(path.read_text())["project"]["dependencies"]
        names = {canonicalize_name(Requirement(d).name) for d in dependencies}
        assert STRANGER not in names and OURS in names, f"{path.relative_to(ROOT)}: {names}"
