"""tests/readme.py finds on a page the section a test asks for, whole."""

from __future__ import annotations

from tests import readme


def test_a_page_section_runs_past_comments_in_its_code_blocks() -> None:
    """A shell comment opening a code block's line is no heading: the section goes on.

    The Security page's certificate recipe starts with ``# A CA of your own``;
    the page's section reaches the trust model after it.
    """
    security = readme.section("Security", "docs/security.md")
    assert "openssl req -x509" in security
    assert "**Trust model.**" in security


def test_a_section_ends_at_the_next_heading_of_its_level() -> None:
    """A ``##`` section stops where the next ``##`` starts."""
    capacity = readme.section("Capacity, queue and job policy", "docs/jobs.md")
    assert "arko.v1.Slave/Status" in capacity
    assert "## " not in capacity
