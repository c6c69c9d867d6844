"""The web UI in a real headless Chromium (Debian's), driven by Playwright, against real daemons.

The UI must be built (``make ui``) and ``/usr/bin/chromium`` installed
(``make test`` does both); a missing one fails these tests, it never skips
them. With ``ARKO_SCREENSHOTS=docs`` the screenshots go to ``docs/`` for the
manual's web UI page; otherwise to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from arko.testing import Fleet
from tests.integration.web import Web, start_web

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
UI_INDEX = ROOT / "ui" / "dist" / "index.html"
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium; Playwright never downloads a browser of its own here."""
    assert CHROMIUM.is_file(), (
        "/usr/bin/chromium is missing: `make test` installs it (apt-get install -y chromium)"
    )
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root, where Chromium's sandbox cannot start.
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """One master serving the built UI, with the example slave, for the whole module."""
    assert UI_INDEX.is_file(), "the web UI is not built: run `make ui` (npm ci && npm run build)"
    with Fleet(tmp_path_factory.mktemp("ui")).running() as fleet:
        yield start_web(fleet)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    # The master's Content-Security-Policy must let every part of the UI load.
    blocked: list[str] = []
    tab.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )
    yield tab
    context.close()
    assert not blocked, f"the page broke its Content-Security-Policy: {blocked}"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/ when asked for (the manual shows them), else tmp."""
    return ROOT / "docs" if os.environ.get("ARKO_SCREENSHOTS") == "docs" else tmp_path


def _state(page: Page) -> str:
    return page.locator("[data-test=state]").inner_text().strip()


def test_slaves_page_shows_the_slave_and_its_methods(site: Web, page: Page, shots: Path) -> None:
    """The home page lists the slave, live, with capacity and every method as a link."""
    slave = site.get("/api/v1/slaves").json()["slaves"][0]
    page.goto(site.url)
    row = page.locator(f"tr[data-slave='{slave['address']}']")
    expect(row).to_contain_text("live")
    for method in ("MyPipeline.Run", "MyPipeline.DryRun", "MyPipelineLogs.Stream"):
        expect(row.get_by_role("link", name=method, exact=True)).to_be_visible()
    page.screenshot(path=shots / "ui-slaves.png", full_page=True)


def test_generated_form_runs_dry_run_and_shows_the_result(
    site: Web, page: Page, shots: Path
) -> None:
    """MyPipeline.DryRun's form comes from its schema; running it shows the job's result."""
    page.goto(site.url)
    page.get_by_role("link", name="MyPipeline.DryRun", exact=True).click()
    expect(page).to_have_url(re.compile(r"/run/MyPipeline\.DryRun$"))
    password = page.locator("#f-password")
    expect(password).to_have_attribute("type", "password")
    expect(page.locator("label[for=f-password] .secret")).to_be_visible()
    page.locator("#f-param").fill("from-the-browser")
    password.fill("s3cret-value")
    page.screenshot(path=shots / "ui-run.png", full_page=True)
    page.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
    expect(page.locator("[data-test=state]")).to_have_text("succeeded")
    expect(page.locator("[data-test=result]")).to_contain_text("job execution done")
    job_id = page.url.rsplit("/", 1)[1]
    record = site.get(f"/api/v1/jobs/{job_id}").json()
    assert record["args"] == {"param": "from-the-browser", "password": "***"}


def test_streaming_output_appears_before_the_job_ends(site: Web, page: Page, shots: Path) -> None:
    """Lines of MyPipelineLogs.Stream show while the job still runs, then it succeeds."""
    page.goto(f"{site.url}/run/MyPipelineLogs.Stream")
    page.locator("#f-lines").fill("6")
    page.locator("#f-interval").fill("0.5")
    page.locator("#f-prefix").fill("build: ")
    page.get_by_role("button", name="Run").click()
    output = page.locator("[data-test=output]")
    expect(output).to_contain_text("build: line 1 of 6")
    # The first line is on screen while the job is still running: it was streamed.
    assert _state(page) == "running"
    assert "line 6 of 6" not in output.inner_text()
    expect(page.locator("[data-test=state]")).to_have_text("succeeded")
    expect(output).to_contain_text("build: line 6 of 6")
    page.screenshot(path=shots / "ui-job.png", full_page=True)


def test_cancel_button_cancels_a_running_job(site: Web, page: Page) -> None:
    """The job page's Cancel button ends a running job as cancelled."""
    accepted = site.post(
        "/api/v1/run/MyPipelineLogs.Stream", json={"lines": 500, "interval": 0.2}
    ).json()
    page.goto(f"{site.url}{accepted['urls']['page']}")
    expect(page.locator("[data-test=output]")).to_contain_text("line 1 of 500")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("[data-test=state]")).to_have_text("cancelled")
    expect(page.get_by_text("cancelled in the web UI").first).to_be_visible()
    assert site.get(f"/api/v1/jobs/{accepted['id']}").json()["state"] == "CANCELLED"


def test_deep_links_reload_and_back(site: Web, page: Page, shots: Path) -> None:
    """A job page loads from its URL and after a reload; filters live in the URL; back works."""
    done = site.post("/api/v1/run/MyPipeline.DryRun?wait=true", json={"param": "p"}).json()
    page.goto(f"{site.url}/jobs/{done['id']}")
    expect(page.locator("[data-test=state]")).to_have_text("succeeded")
    page.reload()
    expect(page.locator("[data-test=state]")).to_have_text("succeeded")
    expect(page.locator("[data-test=result]")).to_contain_text("job execution done")
    page.goto(f"{site.url}/jobs?state=succeeded")
    rows = page.locator("tr[data-job]")
    expect(rows.first).to_be_visible()
    assert set(rows.locator(".badge").all_inner_texts()) == {"succeeded"}
    page.locator("select[name=method]").select_option("MyPipeline.DryRun")
    expect(page).to_have_url(re.compile(r"method=MyPipeline\.DryRun"))
    expect(page.locator(f"tr[data-job='{done['id']}']")).to_be_visible()
    page.screenshot(path=shots / "ui-jobs.png", full_page=True)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs\?state=succeeded$"))
    page.locator(f"tr[data-job='{done['id']}'] a").click()
    expect(page).to_have_url(re.compile(f"/jobs/{done['id']}$"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs\?state=succeeded$"))


def test_unreachable_master_is_explained(site: Web, page: Page) -> None:
    """When API calls cannot get through, the page says the master cannot be reached."""
    page.route("**/api/v1/**", lambda route: route.abort("connectionrefused"))
    page.goto(site.url)
    expect(page.get_by_role("alert")).to_contain_text("The master cannot be reached")


def test_refused_call_asks_for_the_token(fleet: Fleet, browser: Browser) -> None:
    """A master with a client token: the UI says so, and works once the token is entered."""
    assert UI_INDEX.is_file(), "the web UI is not built: run `make ui`"
    web = start_web(fleet, env={"ARKO_MASTER_CLIENT_TOKEN": "tok-123456"})
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    try:
        tab.goto(web.url)
        expect(tab.get_by_role("alert")).to_contain_text("needs its client token")
        tab.get_by_label("Client token").fill("tok-123456")
        tab.get_by_role("button", name="Use").click()
        expect(tab.get_by_role("link", name="MyPipeline.DryRun", exact=True)).to_be_visible()
        expect(tab.get_by_role("alert")).to_have_count(0)
        # Kept for the tab's life, not on disk for every later visit.
        assert tab.evaluate("sessionStorage.getItem('arko.token')") == "tok-123456"
        assert tab.evaluate("localStorage.getItem('arko.token')") is None
    finally:
        context.close()
