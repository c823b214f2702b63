"""Hostile review, infrastructure: request sizes, the proxy, client addresses, the feed."""

import xml.etree.ElementTree as ET

import pytest

from newsletter.tests.factories import make_article, make_section
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = pytest.mark.clock(MONDAY_BEFORE_SEND)


# --- The RSS feed ----------------------------------------------------------------------


@pytest.mark.faults
@pytest.mark.django_db
def test_the_feed_carries_no_markup_a_feed_reader_would_render(client):
    make_article(
        title='Markets <img src=x onerror="alert(1)"> & more',
        dek='<img src=x onerror="alert(document.cookie)">Rates rise',
        byline="<b onmouseover=alert(2)>Ada</b>",
        section=make_section(name="<svg onload=alert(3)>World"),
    )

    response = client.get("/feed/")

    item = ET.fromstring(response.content).find("channel/item")  # noqa: S314 - our own feed
    assert item is not None
    # Feed readers render <description> (and often <title>) as HTML: what the
    # XML parser hands them must hold no tag, only text.
    for tag in ["title", "description", "category", "{http://purl.org/dc/elements/1.1/}creator"]:
        for element in item.iter(tag):
            assert "<" not in (element.text or ""), (tag, element.text)
    assert "Rates rise" in (item.findtext("description") or "")
    assert "Markets" in (item.findtext("title") or "")
