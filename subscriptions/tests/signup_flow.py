"""Signing up as a reader does: the form, the emailed link, the button on its page."""

import re

CONTINUE_LINK = re.compile(r"http://127\.0\.0\.1:8000(/subscribe/continue/[^/\s]+/)")
SIGN_IN_LINK = re.compile(r"http://127\.0\.0\.1:8000(/signin/[^/\s]+/)")


def link_in(mail, pattern: re.Pattern[str] = CONTINUE_LINK) -> str:
    """The path of the first link of this kind in an email's text part.

    `mail` is one of Django's (mailoutbox) or one the SMTP server received.
    """
    text = mail.body if hasattr(mail, "body") else mail.text
    found = pattern.search(text)
    assert found is not None, text
    return found.group(1)


def ask_to_subscribe(client, form: dict, capture):
    """POST the landing page's form; the email it causes is sent before this returns."""
    with capture(execute=True):
        return client.post("/subscribe/", form)


def sign_up(client, form: dict, mailoutbox, capture, **fields):
    """The whole signup up to Checkout: returns the answer to pressing "Continue".

    `fields` override what the continue page's form sends (name, time zone).
    """
    answer = ask_to_subscribe(client, form, capture)
    assert answer.status_code == 200, answer.status_code
    link = link_in(mailoutbox[-1])
    data = {"name": form.get("name", ""), "time_zone": form["time_zone"], **fields}
    with capture(execute=True):
        return client.post(link, data)
