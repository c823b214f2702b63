"""The readers' and editors' journeys, in a real browser against the live stack."""

import re

from playwright.sync_api import Page, expect

from e2e.conftest import (
    BROWSER_TIME_ZONE,
    EDITOR,
    Mailbox,
    admin_sign_in,
    check_accessibility,
    screenshot,
    sign_up,
)

# Django's admin autocomplete (its vendored select2) labels its combobox by
# the span showing the current choice, which is empty while nothing is
# chosen; Django ships this markup. Only these elements are let off the rule.
ADMIN_AUTOCOMPLETE = {
    "aria-input-field-name": ("select2", "Django admin's vendored select2 autocomplete"),
}


def test_visitor_signs_up_passes_the_test_checkout_and_sees_the_account(
    page: Page, mailbox: Mailbox
):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_accessibility(page, "landing")
    screenshot(page, "landing")

    address = "noor@example.com"
    form = page.locator("form.signup")
    form.get_by_label("Email").fill(address)
    form.get_by_label("Name").fill("Noor")
    # signup.js fills in the browser's own time zone.
    expect(form.get_by_label("Time zone")).to_have_value(BROWSER_TIME_ZONE)
    form.get_by_role("button", name="Start my free 14-day trial").click()

    # Nothing starts until the address's owner opens the emailed link.
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    check_accessibility(page, "signup-sent")
    page.goto(mailbox.wait_for(address, "Continue your signup").link(r"/subscribe/continue/[^/]+/"))
    # The token left the address bar (and any Referer) for the session.
    expect(page).to_have_url(re.compile(r"/subscribe/continue/$"))
    expect(page.get_by_label("Name")).to_have_value("Noor")
    check_accessibility(page, "signup-continue")
    screenshot(page, "signup-continue")
    page.get_by_role("button", name="Start my free 14-day trial").click()

    expect(page.get_by_text("Local test checkout.")).to_be_visible()
    check_accessibility(page, "test-checkout")
    screenshot(page, "test-checkout")
    page.get_by_role("button", name="Start trial").click()

    expect(page.get_by_role("heading", name="Welcome, Noor")).to_be_visible()
    expect(page.get_by_text("Your free trial has started")).to_be_visible()
    screenshot(page, "welcome")

    page.get_by_role("link", name="See your account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text(address)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Free trial until \d+ \w+ \d{4}"))).to_be_visible()
    expect(page.get_by_text("Yes, each weekday morning.")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value(BROWSER_TIME_ZONE)
    check_accessibility(page, "account")
    screenshot(page, "account")

    welcome = mailbox.wait_for(address, "Welcome")
    assert "trial" in welcome.text.lower()


def test_signup_form_with_mistakes_says_what_to_fix(page: Page):
    page.goto("/")
    form = page.locator("form.signup")
    form.get_by_label("Email").fill("not an address")
    form.get_by_role("button", name=re.compile("Start my free")).click()

    expect(page.get_by_role("heading", name="Start your free trial")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("something in it needs fixing")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page, "signup-with-errors")
    screenshot(page, "signup-with-errors")


def test_reader_signs_in_by_the_emailed_link_and_opens_billing(new_page, mailbox: Mailbox):
    address = "ravi@example.com"
    sign_up(new_page(), mailbox, address, "Ravi")

    # Later, on another device: no session.
    page = new_page(width=375)
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_accessibility(page, "sign-in-sent")

    link = mailbox.wait_for(address, "sign-in link").link(r"/signin/[^/]+/")
    page.goto(link)
    check_accessibility(page, "sign-in-confirm")
    page.get_by_role("button", name="Sign me in").click()

    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text(address)).to_be_visible()
    page.get_by_role("button", name="Manage billing").click()
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()
    expect(page.get_by_text("Local test billing portal.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Subscription: sub_\w+, trialing"))).to_be_visible()
    screenshot(page, "billing-portal")


def test_reader_unsubscribes_through_the_confirmation_page(page: Page, digest):
    mail = next(m for m in digest if "grace@example.com" in m.rcpt_tos)
    link = mail.link(r"/unsubscribe/[^/]+/")

    page.goto(link)
    expect(page.get_by_role("heading", name="Stop the morning emails?")).to_be_visible()
    expect(page.get_by_text("grace@example.com")).to_be_visible()
    check_accessibility(page, "unsubscribe")
    screenshot(page, "unsubscribe-confirm")

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile("unsubscribed", re.I))
    check_accessibility(page, "unsubscribe-done")
    screenshot(page, "unsubscribe-done")

    # The digest's settings link, and the edition's web page (what the email showed).
    page.goto(mail.link(r"/preferences/[^/]+/"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_accessibility(page, "preferences")
    screenshot(page, "preferences")
    page.goto("/archive/")
    page.locator(".edition-summary h4 a").first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_accessibility(page, "edition")
    screenshot(page, "edition")

    # The same link again says at once where things stand.
    page.goto(link)
    expect(page.get_by_role("heading", name="You're already unsubscribed")).to_be_visible()
    expect(page.get_by_role("button", name="Resubscribe")).to_be_visible()
    check_accessibility(page, "unsubscribe-already")
    screenshot(page, "unsubscribe-already")


def test_editor_writes_publishes_previews_and_sends_a_test_of_the_next_edition(
    page: Page, mailbox: Mailbox
):
    title = "Harbour reopens after the storm"
    admin_sign_in(page)

    page.get_by_role("link", name="Articles").first.click()
    page.get_by_role("link", name=re.compile("Add article")).click()
    body = page.get_by_role("textbox", name="Body")  # the rich-text editor
    expect(body).to_be_visible()
    check_accessibility(page, "admin-article-add", third_party=ADMIN_AUTOCOMPLETE)

    page.get_by_label("Title").fill(title)
    page.get_by_label("Standfirst").fill("Ships moved again by noon; the fishing fleet goes out.")
    body.click()
    page.keyboard.type("The harbour master lifted the closure at dawn.")
    page.keyboard.press("Enter")
    page.keyboard.type("Ferries run to the normal timetable from tomorrow.")
    page.get_by_label("Published").check()
    screenshot(page, "admin-article-add", widths=(1280,))
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    check_accessibility(page, "admin-article-list")

    page.get_by_role("link", name="Next edition").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Next edition")
    expect(page.locator(".desk-articles")).to_contain_text(title)
    preview = page.frame_locator("iframe.desk-email")
    # The story as a linked headline (the hidden preheader repeats its title).
    expect(preview.get_by_role("link", name=title)).to_be_visible()
    check_accessibility(page, "admin-next-edition")
    screenshot(page, "admin-next-edition", widths=(1280,))

    page.get_by_role("button", name=re.compile("Send a test to me")).click()
    expect(page.locator(".messagelist")).to_contain_text(f"Test email sent to {EDITOR[2]}")
    test_mail = mailbox.wait_for(EDITOR[2], "[Test]")
    assert title in test_mail.html

    # Published means live on the site.
    page.goto("/")
    page.get_by_role("link", name=title).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_text("The harbour master lifted the closure at dawn.")).to_be_visible()
    check_accessibility(page, "article")
    screenshot(page, "article")


def test_a_gift_is_bought_delivered_and_started(page: Page, mailbox: Mailbox):
    page.goto("/gift/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Give a year")
    check_accessibility(page, "gift")
    screenshot(page, "gift")
    page.get_by_label("Your email address").fill("giver@example.com")
    page.get_by_label("Their email address").fill("lucky@example.com")
    page.get_by_role("button", name="Pay $46").click()

    expect(page.get_by_role("heading", name="Confirm your gift")).to_be_visible()
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert "will not be charged again" in mailbox.wait_for("giver@example.com", "receipt").text

    gift = mailbox.wait_for("lucky@example.com", "a gift for you")
    page.goto(gift.link(r"/gift/redeem/[^/]+/"))
    expect(page).to_have_url(re.compile(r"/gift/redeem/$"))  # the token left the address bar
    check_accessibility(page, "gift-redeem")
    screenshot(page, "gift-redeem")
    page.get_by_role("button", name="Start my year").click()
    expect(page.get_by_text("Your gift year has started")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Complimentary, until \d+ \w+ \d{4}"))).to_be_visible()
