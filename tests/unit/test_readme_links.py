"""The README's relative links lead somewhere: a file of the checkout, and a heading there.

MkDocs checks the links between the manual's pages (``make docs-check``), but
the README is outside the manual: a page moved or a heading renamed would
leave it pointing at nothing, on the first page a newcomer reads.
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from tests import readme

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_ELSEWHERE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:
_FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#+ (.*)$", re.MULTILINE)


def _relative_links(markdown: str) -> list[str]:
    """Targets of the links and images of ``markdown`` that stay in the checkout."""
    prose = _FENCED.sub("", markdown)
    return [t for t in _LINK.findall(prose) if not _ELSEWHERE.match(t)]


def _anchor(heading: str) -> str:
    """A heading's anchor as MkDocs (Python-Markdown's toc) and GitHub make it."""
    text = unicodedata.normalize("NFKD", heading.replace("`", ""))
    text = re.sub(r"[^\w\s-]", "", text.encode("ascii", "ignore").decode()).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: str) -> set[str]:
    """The anchors of a Markdown page's headings (those outside code blocks)."""
    return {_anchor(h) for h in _HEADING.findall(_FENCED.sub("", readme.read(page)))}


README_LINKS = _relative_links(readme.read())


def test_the_readme_links_into_the_manual() -> None:
    """The README points a reader to the manual's pages, not only to itself."""
    assert any(link.startswith("docs/") for link in README_LINKS)


@pytest.mark.parametrize("link", README_LINKS)
def test_a_readme_link_reaches_a_file_and_heading(link: str) -> None:
    """The file a README link names exists; a ``#part`` names one of its headings."""
    path, _, part = link.partition("#")
    page = path or readme.README
    assert (readme.ROOT / page).exists(), f"the README links to {page}, which does not exist"
    if part:
        assert part in _anchors(page), f"{page} has no heading whose anchor is #{part}"


def test_anchors_are_made_as_mkdocs_makes_them() -> None:
    """Code spans, punctuation and case go; spaces become hyphens."""
    assert _anchor("The `arko` command") == "the-arko-command"
    assert _anchor("Capacity, queue and job policy") == "capacity-queue-and-job-policy"
    assert _anchor("Build steps, and arko building arko") == "build-steps-and-arko-building-arko"
