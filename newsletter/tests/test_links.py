"""Paths to the site's pages, reversed once per process (newsletter.links), never stale."""

from django.urls import clear_script_prefix, reverse, set_script_prefix

from newsletter.links import path_to
from newsletter.models import Article


def test_a_kept_path_is_djangos_reverse():
    assert path_to("article", slug="a-story") == reverse("article", kwargs={"slug": "a-story"})
    assert path_to("subscriptions:account") == reverse("subscriptions:account")
    assert Article(slug="a-story").get_absolute_url() == reverse(
        "article", kwargs={"slug": "a-story"}
    )


def test_a_kept_path_follows_the_script_prefix_it_is_served_under():
    plain = path_to("article", slug="a-story")
    set_script_prefix("/briefing/")
    try:
        assert path_to("article", slug="a-story") == "/briefing" + plain
        assert Article(slug="a-story").get_absolute_url() == "/briefing" + plain
    finally:
        clear_script_prefix()
    assert path_to("article", slug="a-story") == plain
