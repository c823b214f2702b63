"""Each reader's own digest in a real browser: the preferences page and a headlines-only digest.

At a phone's width, light and dark, with axe-core: the sections, days and
format a reader chooses, what the page then says the next digest holds,
and the headlines-only digest such a reader gets.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import PHONE, SCREENSHOTS, Stack, check_accessibility

READER = "alan@example.com"


def shell(stack: Stack, code: str) -> str:
    return stack.manage("shell", "--no-imports", "-c", code).strip()


def preferences_link(stack: Stack, email: str) -> str:
    return shell(
        stack,
        "from subscriptions import preferences\n"
        "from subscriptions.models import Subscriber\n"
        f"print(preferences.preferences_url(Subscriber.objects.get(email={email!r})))",
    )


def fits_the_phone(page: Page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"The page scrolls sideways: {scroll_width}px wide"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_reader_chooses_sections_days_and_headlines_on_a_phone(new_page, stack, scheme):
    page = new_page(width=PHONE["width"], color_scheme=scheme)
    page.goto(preferences_link(stack, READER))
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    sections = page.get_by_role("group", name="Sections")
    for name in ("Science", "Culture"):
        sections.get_by_role("checkbox", name=name).uncheck()
    for name in ("World", "Business"):
        sections.get_by_role("checkbox", name=name).check()
    days = page.get_by_role("group", name="Days")
    for name in ("Tuesday", "Thursday"):
        days.get_by_role("checkbox", name=name).uncheck()
    for name in ("Monday", "Wednesday", "Friday"):
        days.get_by_role("checkbox", name=name).check()
    page.get_by_role("group", name="Format").get_by_role(
        "radio", name=re.compile("Headlines only")
    ).check()
    page.get_by_role("button", name="Save").click()

    summary = page.locator("#next-digest-summary")
    expect(summary).to_contain_text(re.compile(r"(Monday|Wednesday|Friday) \d\d:\d\d in "))
    expect(summary).to_contain_text("World, Business; headlines only")
    expect(page.get_by_role("checkbox", name="Culture")).not_to_be_checked()
    fits_the_phone(page)
    check_accessibility(page, f"preferences-choices-{scheme}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"preferences-choices-375-{scheme}.png"), full_page=True)


HEADLINES_DIGEST = """
from delivery.emails import DigestTemplate
from newsletter import editions
from newsletter.models import Article, Edition, Section
from subscriptions.models import Subscriber

reader = Subscriber.objects.get(email={email!r})
edition = Edition.objects.order_by("-date").first() or editions.build_edition(
    editions.upcoming_edition_date(), even_if_empty=True
)
articles = list(Article.objects.published().with_leads().select_related("section")[:6])
chosen = editions.stories_for(articles, frozenset(reader.sections.values_list("pk", flat=True)))
names = tuple(reader.sections.values_list("name", flat=True))
digest = DigestTemplate(
    edition, chosen.stories, digest_format="headlines", sections=names, others=chosen.others
)
print(digest.message_for(reader).html)
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_headlines_only_digest_reads_on_a_phone(new_page, stack, scheme):
    # The reader who follows World and Business, headlines only (the test above).
    shell(
        stack,
        "from subscriptions.actions.account import do_set_digest_choices\n"
        "from subscriptions.models import Subscriber\n"
        f"do_set_digest_choices(Subscriber.objects.get(email={READER!r}), "
        "sections=['world', 'business'], days='mon,wed,fri', digest_format='headlines')",
    )
    html = shell(stack, HEADLINES_DIGEST.format(email=READER))
    page = new_page(width=PHONE["width"], color_scheme=scheme)
    page.set_content(html, wait_until="load")

    expect(page.get_by_text("Your sections: World, Business")).to_be_visible()
    expect(page.get_by_text("headlines only").first).to_be_visible()
    expect(page.get_by_role("link", name="Read the full story").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ more stor(y|ies) in sections you don't follow")))
    fits_the_phone(page)
    check_accessibility(page, f"digest-headlines-{scheme}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"digest-headlines-375-{scheme}.png"), full_page=True)
