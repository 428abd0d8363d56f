"""`prism admin` in a real browser: Debian's Chromium, headless, driven by Playwright.

Loads every page, follows every link, takes a confirmed action and reads its audit entry, watches the live
metrics redraw. With $PRISM_ADMIN_SCREENSHOTS set to a directory it saves the main pages there
(scripts/admin_screenshots.sh writes docs/admin/).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from admin_support import ACTOR, MIGRATING, Seeded, admin_server, example_service, seed
from playwright.sync_api import Browser, Page, expect, sync_playwright

from protoc_gen_prism.admin.app import PAGES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_ENV = "PRISM_ADMIN_SCREENSHOTS"


@pytest.fixture(scope="module")
def base(generated: Path, nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with example_service(generated, tmp_path_factory.mktemp("admin-browser-service")) as metrics:
        seeded: Seeded = seed(
            tmp_path_factory.mktemp("admin-browser"), nats_url=nats_url, metrics_url=metrics, migration=True
        )
        with admin_server(seeded) as url:
            yield url


@pytest.fixture(scope="module")
def browser(base: str) -> Iterator[Browser]:
    # After `base`: Playwright's sync API runs an event loop on this thread, and seeding runs its own.
    assert Path(CHROMIUM).is_file(), (
        f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_every_page_opens_from_the_navigation_and_every_link_leads_somewhere(page: Page, base: str) -> None:
    page.goto(base + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    for p in PAGES:
        page.get_by_role("navigation").get_by_role("link", name=p.title, exact=True).click()
        expect(page).to_have_url(base + p.path)
        expect(page.get_by_role("heading", level=1)).to_have_text(p.title)
        expect(page.locator("nav a[aria-current=page]")).to_have_text(p.title)

    seen: set[str] = set()
    queue = ["/"]
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if path.startswith(("/audit/export", "/static/")):
            answer = page.request.get(base + path)  # a download and assets: fetched, not shown
            assert answer.ok, path
            continue
        response = page.goto(base + path)
        assert response is not None and response.ok, path
        for href in page.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
            target = urlsplit(urljoin(base + path, href))
            if target.netloc == urlsplit(base).netloc:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    assert {p.path for p in PAGES} <= seen
    assert "/audit/export?db=0" in seen


def test_what_a_person_sees_on_the_main_pages(page: Page, base: str) -> None:
    page.goto(base + "/")
    screenshot(page, "overview")

    page.goto(base + "/namespaces")
    patient = page.get_by_role("row").filter(has_text="prismtest_pii_v1_patient").first
    expect(patient).to_contain_text("key_value")
    expect(patient).to_contain_text("ssn: encrypted, audited, masked in logs")
    page.get_by_text("why postgres").first.click()
    expect(page.get_by_text("key_value is served by key_value").first).to_be_visible()
    screenshot(page, "namespaces")

    page.goto(base + "/schema")
    main_db = page.locator("section").first  # the deployment's own database; the migration's target follows
    expect(main_db.get_by_text("Nothing pending: every generated file is applied.")).to_be_visible()
    expect(main_db.get_by_role("cell", name="sql/sqlite/prismtest/pii/v1/pii.sql")).to_be_visible()
    screenshot(page, "schema")

    page.goto(base + "/streams")
    chat = page.get_by_role("row").filter(has_text="prismtest_pii_v1_chat_line")
    expect(chat).to_contain_text("matches the plan")
    expect(chat.get_by_role("cell", name="1", exact=True)).to_be_visible()
    screenshot(page, "streams")

    page.goto(base + "/audit")
    main_db = page.locator("section").first
    expect(main_db.get_by_text(re.compile(r"Chain verified: \d+ entries"))).to_be_visible()
    expect(main_db.get_by_role("cell", name=re.compile(r"^s_[0-9a-f]{32}$")).first).to_be_visible()
    screenshot(page, "audit")


def test_a_key_rotation_is_confirmed_done_and_audited_under_the_admins_name(page: Page, base: str) -> None:
    page.goto(base + "/keys")
    main_db = page.locator("section").first
    generation = int(main_db.locator("dt:text-is('data key generation') + dd").inner_text())
    expect(main_db.locator("dd.forgotten")).to_have_text("1")
    screenshot(page, "keys")

    main_db.get_by_role("button", name="Rotate keys…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm")
    expect(page.get_by_text("Start a new data key generation on this database?")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"data key generation {generation + 1} is primary")).to_be_visible()
    expect(page.get_by_text(f"by {ACTOR}")).to_be_visible()

    page.get_by_role("link", name="Back").click()
    main_db = page.locator("section").first
    expect(main_db.locator("dt:text-is('data key generation') + dd")).to_have_text(str(generation + 1))
    page.get_by_role("navigation").get_by_role("link", name="Audit").click()
    main_db = page.locator("section").first
    newest = main_db.locator("tbody tr").first
    expect(newest).to_contain_text(ACTOR)
    expect(newest).to_contain_text("admin.rotate-keys")
    expect(main_db.get_by_text(re.compile(r"Chain verified"))).to_be_visible()


def test_a_phase_change_is_confirmed_done_and_audited(page: Page, base: str) -> None:
    page.goto(base + "/migrations")
    row = page.get_by_role("row").filter(has_text=MIGRATING)
    expect(row).to_contain_text("sqlite → sqlite_new")
    expect(row).to_contain_text("dual_write")
    expect(row).to_contain_text("1 of 1 rows (done)")
    expect(row.locator("progress")).to_have_attribute("value", "1.0")
    screenshot(page, "migrations")

    row.get_by_role("button", name="Advance to shadow_read…").click()
    expect(page.get_by_text(f"Move the migration of {MIGRATING} to phase shadow_read?")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"{MIGRATING} is in phase shadow_read, set by {ACTOR}")).to_be_visible()
    page.get_by_role("link", name="Back").click()
    row = page.get_by_role("row").filter(has_text=MIGRATING)
    expect(row).to_contain_text("shadow_read")
    expect(row).to_contain_text(f"by {ACTOR}")
    expect(row.get_by_role("button", name="Advance to promoted…")).to_be_visible()

    page.get_by_role("navigation").get_by_role("link", name="Audit").click()
    newest = page.locator("section").first.locator("tbody tr").first
    expect(newest).to_contain_text(ACTOR)
    expect(newest).to_contain_text("migrate")
    expect(newest).to_contain_text("migration phase")


def test_the_metrics_page_draws_charts_and_redraws_them_live(page: Page, base: str) -> None:
    page.goto(base + "/metrics")
    live = page.locator("[data-live='/metrics/live']")
    section = live.locator("section.metric").filter(has_text="acme_users_v1_user_profile")
    expect(section.locator("svg polyline.ops")).to_be_visible(timeout=30_000)
    # Reloaded until the charts have points; then the page's own script swaps in newer ones.
    first = section.locator("figcaption").first.inner_text()
    assert "operations per second" in first
    before = live.inner_html()
    page.wait_for_function(
        "old => document.querySelector(\"[data-live='/metrics/live']\").innerHTML !== old",
        arg=before,
        timeout=15_000,
    )
    expect(section.locator("svg polyline.p50")).to_be_visible()
    expect(section.locator("svg polyline.p99")).to_be_visible()
    expect(section.get_by_text(re.compile(r"[\d.]+ ops/s"))).to_be_visible()
    screenshot(page, "metrics")
