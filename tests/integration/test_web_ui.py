"""The web UI in a real headless Chromium (Debian's), driven by Playwright, against real daemons.

The UI must be built (``make ui``) and ``/usr/bin/chromium`` installed
(``make test`` does both); a missing one fails these tests, it never skips
them. With ``ARKO_SCREENSHOTS=docs`` the screenshots go to ``docs/`` for the
manual's web UI page; otherwise to the test's temporary folder.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from arko.testing import Fleet
from arko.v1 import secrets_pb2, secrets_pb2_grpc
from tests.integration.lineage import store_tree
from tests.integration.web import Web, start_web

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
UI_INDEX = ROOT / "ui" / "dist" / "index.html"
STEPS = ROOT / "tests" / "fixtures" / "steps.toml"
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
def ui_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet(tmp_path_factory.mktemp("ui")).running() as fleet:
        yield fleet


@pytest.fixture(scope="module")
def site(ui_fleet: Fleet) -> Web:
    """One master serving the built UI, with the example slave, for the whole module."""
    assert UI_INDEX.is_file(), "the web UI is not built: run `make ui` (npm ci && npm run build)"
    return start_web(ui_fleet)


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


def test_job_page_shows_the_record_and_reruns_it(site: Web, page: Page, shots: Path) -> None:
    """Trigger, times and params are shown; Re-run starts the same method and params anew."""
    first = site.post(
        "/api/v1/jobs?wait=true",
        json={"method": "MyPipeline.DryRun", "params": {"param": "from-params"}},
    ).json()
    page.goto(f"{site.url}/jobs/{first['id']}")
    expect(page.locator("[data-test=state]")).to_have_text("succeeded")
    expect(page.locator("[data-test=trigger]")).to_have_text("API call")
    for moment in ("created", "started", "ended"):
        expect(page.locator(f"[data-test={moment}]")).to_have_text(
            re.compile(r"^\d{4}-\d\d-\d\d .* UTC$")
        )
    expect(page.locator("[data-test=params]")).to_contain_text("from-params")
    expect(page.locator("[data-test=parent]")).to_have_count(0)
    page.get_by_role("button", name="Re-run").click()
    expect(page).not_to_have_url(re.compile(f"/jobs/{first['id']}$"))
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
    expect(page.locator("[data-test=state]")).to_have_text("succeeded")
    again = site.get(f"/api/v1/jobs/{page.url.rsplit('/', 1)[1]}").json()
    assert (again["method"], again["params"]) == ("MyPipeline.DryRun", {"param": "from-params"})
    assert again["result"] == first["result"]
    page.screenshot(path=shots / "ui-job-record.png", full_page=True)


def test_rerun_is_refused_for_a_hidden_value(site: Web, page: Page) -> None:
    """A record holding a *** value cannot be re-run: the button is disabled and says why."""
    done = site.post(
        "/api/v1/run/MyPipeline.DryRun?wait=true", json={"param": "p", "password": "pw-123"}
    ).json()
    page.goto(f"{site.url}/jobs/{done['id']}")
    button = page.get_by_role("button", name="Re-run")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile(r"args\.password.*cannot be sent again"))
    expect(page.locator("[data-test=rerun-blocked]")).to_contain_text("args.password")
    expect(page.locator("[data-test=args]")).to_contain_text('"***"')
    assert "pw-123" not in page.content()


def test_job_tree_and_parent_filter(ui_fleet: Fleet, site: Web, page: Page, shots: Path) -> None:
    """A parent's page shows its children as a tree with links; the list filters by parent."""
    tree = store_tree(ui_fleet.database())
    page.goto(f"{site.url}/jobs/{tree.root}")
    children = page.locator("[data-test=children]")
    for child in (tree.lint, tree.test, tree.unit):
        expect(children.locator(f"[data-child='{child}']")).to_be_visible()
    # The grandchild sits under its own parent, not beside it.
    expect(
        children.locator(f"[data-child='{tree.test}'] [data-child='{tree.unit}']")
    ).to_be_visible()
    expect(children.locator(f"[data-child='{tree.lint}'] .badge").first).to_have_text("succeeded")
    page.screenshot(path=shots / "ui-job-tree.png", full_page=True)
    children.locator(f"[data-child='{tree.test}'] > a").click()
    expect(page).to_have_url(re.compile(f"/jobs/{tree.test}$"))
    expect(page.locator("[data-test=trigger]")).to_have_text("child job")
    page.locator("[data-test=parent] a").click()
    expect(page).to_have_url(re.compile(f"/jobs/{tree.root}$"))

    page.goto(f"{site.url}/jobs?parent={tree.root}")
    expect(page.locator("[data-test=parent-filter]")).to_contain_text(tree.root[:8])
    rows = page.locator("tr[data-job]")
    expect(rows).to_have_count(2)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.job)")) == {tree.lint, tree.test}
    failed = page.locator(f"tr[data-job='{tree.test}']")
    expect(failed.locator("[data-test=error]")).to_have_text("INTERNAL: 3 tests failed")
    expect(failed.locator("[data-test=slave]")).to_have_text("127.0.0.1:1")
    page.get_by_role("button", name="Clear the parent filter").click()
    expect(page).to_have_url(re.compile(r"/jobs$"))
    expect(page.locator(f"tr[data-job='{tree.root}']")).to_be_visible()


def test_jobs_list_refreshes_itself(site: Web, page: Page) -> None:
    """A job started after the list was opened shows up in it, and its state follows."""
    page.goto(f"{site.url}/jobs?method=MyPipelineLogs.Stream")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    accepted = site.post(
        "/api/v1/run/MyPipelineLogs.Stream", json={"lines": 3, "interval": 0.5}
    ).json()
    row = page.locator(f"tr[data-job='{accepted['id']}']")
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("succeeded")


def test_jobs_list_fits_a_phone(ui_fleet: Fleet, site: Web, browser: Browser, shots: Path) -> None:
    """At 390x844 the jobs list (long errors included) never scrolls sideways."""
    store_tree(ui_fleet.database())
    site.post("/api/v1/run/MyPipelineLogs.Stream?wait=true", json={"lines": -1})  # a long error
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    phone = context.new_page()
    try:
        phone.goto(f"{site.url}/jobs")
        expect(phone.locator("tr[data-job]").first).to_be_visible()
        expect(phone.locator("[data-test=error]").first).to_be_visible()
        widths = phone.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
        phone.screenshot(path=shots / "ui-jobs-phone.png")
    finally:
        context.close()


def _tab(browser: Browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    context.set_default_timeout(TIMEOUT_MS)
    return context, context.new_page()


def test_a_running_pipeline_shows_its_child_jobs_as_they_run(
    fleet: Fleet, browser: Browser
) -> None:
    """A real parent job (Steps/Pipeline) makes real children; its page lists each, live."""
    web = start_web(fleet, slave=False)
    fleet.slave(web.master, "--config", str(STEPS), env={"ARKO_SLAVE_RUN_DELAY": "0"})
    accepted = web.post(
        "/api/v1/run/arko.v1.Steps.Pipeline",
        json={"pipeline": "checks", "params": {"count": "3", "code": "0"}},
    ).json()
    context, tab = _tab(browser)
    try:
        tab.goto(f"{web.url}/jobs/{accepted['id']}")
        children = tab.locator("[data-test=children] [data-child]")
        expect(children).to_have_count(3)
        expect(tab.locator("[data-test=children] .badge")).to_have_text(["succeeded"] * 3)
        expect(tab.locator("[data-test=children]")).to_contain_text("arko.v1.Steps.Run")
        inputs = tab.locator("[data-test=children] [data-test=inputs]").all_inner_texts()
        assert sorted(inputs) == ["step=env", "step=exit", "step=lines"]
        expect(tab.locator("[data-test=state]")).to_have_text("succeeded")
        children.first.locator("> a").click()
        expect(tab.locator("[data-test=trigger]")).to_have_text("child job")
    finally:
        context.close()


def test_secrets_page_shows_names_and_globs_never_values(
    fleet: Fleet, browser: Browser, tmp_path: Path
) -> None:
    """Names and method globs are listed; no value reaches the browser."""
    key = tmp_path / "secrets.key"
    key.write_bytes(base64.b64encode(os.urandom(32)))
    key.chmod(0o600)
    web = start_web(fleet, "--secrets_key_file", str(key), slave=False)
    value = "s3cr3t-value-for-the-ui-test"
    with grpc.insecure_channel(web.master.address) as channel:
        secrets_pb2_grpc.SecretsStub(channel).Set(
            secrets_pb2.SetSecretRequest(name="DEPLOY_KEY", value=value, methods=["Deploy.*"]),
            timeout=10,
        )
    context, tab = _tab(browser)
    try:
        tab.goto(f"{web.url}/secrets")
        row = tab.locator("tr[data-secret='DEPLOY_KEY']")
        expect(row).to_contain_text("Deploy.*")
        assert value not in tab.content()
    finally:
        context.close()


def test_secrets_page_says_how_to_turn_secrets_on(site: Web, page: Page) -> None:
    """A master with no --secrets_key_file: the page says so instead of an empty list."""
    page.goto(f"{site.url}/secrets")
    expect(page.get_by_role("alert")).to_contain_text("--secrets_key_file")
