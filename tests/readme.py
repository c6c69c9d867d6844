"""The code blocks of the README and the manual (docs/), read as a user reads them.

Tests take their commands from here rather than copying them, so a page that
tells users something that does not work fails a test.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = "README.md"
_HEADING = re.compile(r"^(#+) (.*)$", re.MULTILINE)
_FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def read(page: str = README) -> str:
    """The page ``page``, a path from the repository's root (``docs/jobs.md``), as written."""
    return (ROOT / page).read_text()


def section(title: str, page: str = README) -> str:
    """The text under ``title`` in ``page``, up to the next heading of its level or above.

    Raises:
        AssertionError: the page has no such heading.
    """
    whole = read(page)
    # A shell comment in a code block starts with "# " too: it is no heading.
    fenced = [m.span() for m in _FENCED.finditer(whole)]
    headings = [
        h for h in _HEADING.finditer(whole) if not any(a <= h.start() < b for a, b in fenced)
    ]
    found = next((h for h in headings if h[2] == title), None)
    assert found, f"{page} has no section {title!r}"
    level = len(found[1])
    ends = (h.start() for h in headings if h.start() > found.start() and len(h[1]) <= level)
    return whole[found.end() : next(ends, len(whole))]


def blocks(text: str, lang: str = "sh") -> list[str]:
    """The fenced code blocks of ``text`` whose info string is ``lang`` ("" for none)."""
    return re.findall(rf"^```{re.escape(lang)}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """A shell block's commands as argument lists, as the shell splits them.

    Continued lines are joined and comments dropped.
    """
    joined = block.replace("\\\n", " ")
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def transcript(block: str) -> list[tuple[list[str], str]]:
    """A terminal transcript's ``$ command`` lines, each with the output shown below it."""
    runs: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            runs.append((shlex.split(line[2:]), []))
        else:
            assert runs, f"output before any command in {block!r}"
            runs[-1][1].append(line)
    return [(argv, "\n".join(output)) for argv, output in runs]
