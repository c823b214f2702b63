"""What the digest looks like in a mail client: the HTML part a reader received.

The digest is sent by `send_digest --sync` through the real SMTP server (the
`digest` fixture); its HTML part is loaded into the browser as a mail client
would show it, on a phone and in a wide reading pane, light and dark.
"""

import pytest
from playwright.sync_api import expect

from e2e.conftest import SCREENSHOTS, check_accessibility

# The page background the digest's own styles give each scheme.
BACKGROUND = {"light": "rgb(244, 241, 234)", "dark": "rgb(18, 18, 18)"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 800])
def test_digest_email_reads_on_a_phone_and_a_wide_pane_in_light_and_dark(
    new_page, digest, width, scheme
):
    mail = next(m for m in digest if "grace@example.com" in m.rcpt_tos)
    page = new_page(width=width, color_scheme=scheme)
    page.set_content(mail.html, wait_until="load")

    expect(page.get_by_text("Grace", exact=False).first).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[scheme]
    if width <= 375:
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, (
            f"The digest scrolls sideways on a {width}px phone: {scroll_width}px wide"
        )

    check_accessibility(page, f"digest-{width}-{scheme}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"digest-{width}-{scheme}.png"), full_page=True)
