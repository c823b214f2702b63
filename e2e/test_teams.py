"""A team subscription in a real browser: bought, its manager's page, a seat taken (issue 32)."""

import re

from playwright.sync_api import expect

from e2e.conftest import Mailbox, check_accessibility, screenshot, sign_up


def test_a_manager_buys_seats_and_a_colleague_takes_one(new_page, mailbox: Mailbox):
    manager = new_page()
    sign_up(manager, mailbox, "nadia@newsroom.example", "Nadia")
    manager.goto("/teams/")
    expect(manager.get_by_role("heading", level=1)).to_have_text("The briefing for your whole team")
    check_accessibility(manager, "teams")
    screenshot(manager, "teams")
    manager.get_by_label("Your organisation's name").fill("The Newsroom")
    manager.get_by_label("Seats").fill("6")
    manager.get_by_role("button", name="Continue to payment").click()
    expect(manager.get_by_text("Local test checkout.")).to_be_visible()
    expect(manager.get_by_text("$220.80 for the first year")).to_be_visible()  # 6 x $36.80
    manager.get_by_role("button", name="Subscribe").click()

    expect(manager.get_by_role("heading", name="The Newsroom")).to_be_visible()
    expect(manager.get_by_text("0 of 6 taken")).to_be_visible()
    invite = manager.get_by_label("Invite link").input_value()
    assert re.search(r"/teams/join/[^/]+/$", invite), invite

    colleague = new_page()
    colleague.goto(invite)
    expect(colleague.get_by_role("heading", level=1)).to_have_text(re.compile("Join The Newsroom"))
    check_accessibility(colleague, "team-join")
    screenshot(colleague, "team-join")
    colleague.get_by_label("Email").fill("ines@newsroom.example")
    colleague.get_by_label("Name").fill("Inès")
    colleague.get_by_role("button", name="Email me the link to my seat").click()
    expect(colleague.get_by_role("heading", name="Check your inbox")).to_be_visible()
    colleague.goto(
        mailbox.wait_for("ines@newsroom.example", "Take your seat").link(r"/teams/seat/")
    )
    colleague.get_by_role("button", name="Take my seat").click()
    expect(colleague.get_by_role("heading", name="Your account")).to_be_visible()
    expect(colleague.get_by_role("region", name="Team subscription")).to_contain_text(
        "the team pays for your briefing"
    )

    manager.reload()
    expect(manager.get_by_text("1 of 6 taken")).to_be_visible()
    expect(manager.get_by_role("cell", name="ines@newsroom.example (Inès)")).to_be_visible()
    check_accessibility(manager, "team-manage")
    screenshot(manager, "team-manage")
    dark = new_page(color_scheme="dark")
    dark.goto(manager.url)
    check_accessibility(dark, "team-manage-dark")

    manager.get_by_role("button", name="Remove ines@newsroom.example").click()
    expect(manager.get_by_text("is off the team")).to_be_visible()
    expect(manager.get_by_text("0 of 6 taken")).to_be_visible()
    ended = mailbox.wait_for("ines@newsroom.example", "has ended")
    assert "trial" in ended.text
