"""Referrals in a real browser: a reader's link, its landing page, the longer trial (issue 32)."""

import re

from playwright.sync_api import Page, expect

from e2e.conftest import Mailbox, check_accessibility, screenshot, sign_up


def test_a_readers_link_invites_a_friend_to_the_longer_trial(new_page, mailbox: Mailbox):
    referrer = new_page()
    sign_up(referrer, mailbox, "rosa@example.com", "Rosa Parks")
    referrer.goto("/account/")
    panel = referrer.get_by_role("region", name="Invite friends")
    link = panel.get_by_label("Your link").input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/invite/\d+-[\w-]+/", link), link
    panel.get_by_label(re.compile("Show my first name")).check()
    panel.get_by_role("button", name="Save").click()
    expect(referrer.get_by_text("Your invitation page now shows your first name.")).to_be_visible()
    check_accessibility(referrer, "account-referrals")
    screenshot(referrer, "account-referrals")

    friend = new_page()
    friend.goto(link)
    expect(friend.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Rosa invited you to ")
    )
    expect(friend.get_by_text(re.compile("A free 30-day trial"))).to_be_visible()
    expect(friend.get_by_text("Parks")).to_have_count(0)
    check_accessibility(friend, "referral-landing")
    screenshot(friend, "referral-landing")
    dark = new_page(color_scheme="dark")
    dark.goto(link)
    check_accessibility(dark, "referral-landing-dark")

    form = friend.locator("form.signup")
    form.get_by_label("Email").fill("claudette@example.com")
    form.get_by_label("Name").fill("Claudette")
    form.get_by_role("button", name="Start my free 30-day trial").click()
    expect(friend.get_by_role("heading", name="Check your inbox")).to_be_visible()
    friend.goto(
        mailbox.wait_for("claudette@example.com", "Continue your signup").link(
            r"/subscribe/continue/[^/]+/"
        )
    )
    friend.get_by_role("button", name="Start my free 30-day trial").click()
    expect(friend.get_by_text("Local test checkout.")).to_be_visible()
    expect(friend.get_by_text("30-day free trial")).to_be_visible()
    friend.get_by_role("button", name="Start trial").click()
    expect(friend.get_by_role("heading", name="Welcome, Claudette")).to_be_visible()

    referrer.goto("/account/")
    panel = referrer.get_by_role("region", name="Invite friends")
    expect(panel.get_by_text(re.compile(r"Started a trial\s*1"))).to_be_visible()


def test_a_broken_invitation_link_still_offers_the_usual_trial(page: Page):
    page.goto("/invite/1-not-a-real-signature/")
    expect(page.get_by_role("heading", name="This invitation link doesn't work")).to_be_visible()
    expect(page.get_by_role("button", name="Start my free 14-day trial")).to_be_visible()
    check_accessibility(page, "referral-landing-broken")
