"""The digest's links to a reader's own pages: "{token}" where their token goes."""

import pytest
from django.urls import reverse

from delivery.emails import token_link


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
