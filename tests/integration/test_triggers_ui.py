"""The web UI's Triggers page in headless Chromium, against a master with a schedule."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from arko.testing import Fleet, wait_until
from tests.integration.test_web_ui import TIMEOUT_MS, UI_INDEX, browser  # noqa: F401
from tests.integration.web import start_web


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.mark.one_pass("the page reads the same listing whichever database the master has")
def test_triggers_page_shows_a_schedule_its_next_time_and_last_job(
    fleet: Fleet, page: Page
) -> None:
    """The schedule's row says how it fires, when next, and links its last job."""
    assert UI_INDEX.is_file(), "the web UI is not built: run `make ui` (npm ci && npm run build)"
    config = fleet.workdir / "master.toml"
    config.write_text('[[schedule]]\nname = "tick"\nevery = "1s"\nmethod = "MyPipeline.DryRun"\n')
    site = start_web(fleet, "--config", str(config), "--job_flush_interval", "0.2")

    def last_job() -> str | None:
        listed = site.get("/api/v1/triggers").json()["triggers"][0]
        return str(listed["last_job"]["id"]) if "last_job" in listed else None

    wait_until(last_job, 30, "a job of the schedule")
    page.goto(f"{site.url}/triggers")
    row = page.locator("tr[data-trigger='schedule:tick']")
    expect(row).to_contain_text("every 1s")
    expect(row).to_contain_text("MyPipeline.DryRun")
    expect(row.locator("a[href^='/jobs/']")).to_have_count(1)
    row.locator("a[href^='/jobs/']").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
