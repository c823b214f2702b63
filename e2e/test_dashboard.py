"""The publisher's dashboard in a real browser, on the demo's year of history."""

import re
import shutil

from playwright.sync_api import Page, expect

from e2e.conftest import ROOT, SCREENSHOTS, admin_sign_in, check_accessibility, screenshot

DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def test_the_publisher_reads_the_dashboard_and_asks_for_the_weekly_summary(new_page):
    page: Page = new_page()
    admin_sign_in(page)
    page.get_by_role("link", name="Dashboard").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The publisher's dashboard")
    # The demo's history answers every question: money, growth, sends.
    expect(page.locator("#figure-revenue .dashboard-headline")).to_contain_text(
        re.compile(r"MRR \$[1-9]")
    )
    for slug in (
        "readers",
        "revenue",
        "growth",
        "trials",
        "conversion",
        "churn",
        "editions",
        "zones",
    ):
        expect(page.locator(f"#figure-{slug} svg[role=img]")).to_be_visible()
    expect(page.locator("#figure-editions .dashboard-headline")).to_contain_text("Counted")
    check_accessibility(page, "admin-dashboard")

    # The numbers behind a chart, in a table.
    page.locator("#figure-editions summary").click()
    table = page.locator("#figure-editions table")
    expect(table.get_by_role("columnheader", name="Complaints within 48 h")).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(30)
    check_accessibility(page, "admin-dashboard-table-open")

    # Another range, and one figure's own page.
    page.get_by_role("link", name="365 days").click()
    expect(page.get_by_text("365 days", exact=True)).to_have_attribute("aria-current", "true")
    page.get_by_role("link", name="Sends by zone").click()
    expect(page.get_by_role("columnheader", name="Median send (minutes)")).to_be_visible()
    check_accessibility(page, "admin-dashboard-zones")

    page.goto("/admin/dashboard/")
    page.get_by_label("Email me this summary every Monday morning").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messagelist")).to_contain_text("every Monday morning")
    expect(page.get_by_label("Email me this summary every Monday morning")).to_be_checked()


def test_dashboard_screenshots_light_and_dark(new_page):
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page: Page = new_page(width=1280, color_scheme=scheme)
        admin_sign_in(page)
        page.goto("/admin/dashboard/?days=90")
        expect(page.locator("#figure-zones svg")).to_be_visible()
        check_accessibility(page, f"admin-dashboard-{scheme}")
        screenshot(page, f"dashboard-{scheme}", widths=(1280,))
        shutil.copyfile(
            SCREENSHOTS / f"dashboard-{scheme}-1280.png",
            DOCS_SCREENSHOTS / f"dashboard-{scheme}.png",
        )
