"""The digest's links: reversed once per process (delivery.emails.path_to), never stale."""

import pytest
from django.urls import clear_script_prefix, reverse, set_script_prefix

from delivery.emails import path_to, token_link


def test_a_kept_link_is_djangos_reverse():
    assert path_to("article", slug="a-story") == reverse("article", kwargs={"slug": "a-story"})
    assert path_to("subscriptions:account") == reverse("subscriptions:account")


def test_a_link_follows_the_script_prefix_it_is_served_under():
    plain = path_to("article", slug="a-story")
    set_script_prefix("/briefing/")
    try:
        assert path_to("article", slug="a-story") == "/briefing" + plain
    finally:
        clear_script_prefix()
    assert path_to("article", slug="a-story") == plain


@pytest.mark.parametrize("view", ["unsubscribe", "preferences", "subscriptions:referral-landing"])
def test_a_token_link_has_the_readers_token_where_the_view_takes_it(view, settings):
    settings.SITE_URL = "https://news.example"
    link = token_link(view)
    assert link == "https://news.example" + reverse(view, kwargs={"token": "T0K"}).replace(
        "T0K", "{token}"
    )
    assert link.format(token="abc") == "https://news.example" + reverse(
        view, kwargs={"token": "abc"}
    )
