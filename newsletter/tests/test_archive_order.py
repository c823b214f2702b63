"""The archive lists an edition's articles as its email did: the editors' order, none left out."""

import datetime

import pytest

from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def test_the_archive_follows_the_email_order_and_leaves_out_what_the_editors_did(client):
    first, second, third = (
        make_article(title=title, published_ago=datetime.timedelta(hours=hours))
        for title, hours in [("Alpha story", 3), ("Bravo story", 2), ("Charlie story", 1)]
    )
    edition = built_edition(MONDAY)
    # The editors put Charlie first, then Alpha, and leave Bravo out.
    edition.curate({third.pk: (1, True), first.pk: (2, True), second.pk: (3, False)}, "")
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.SENT)
    email_order = [article.title for article in edition.ordered_articles()]

    page = client.get("/archive/").content.decode()

    listed = [title for title in ("Alpha story", "Bravo story", "Charlie story") if title in page]
    assert sorted(listed, key=page.index) == email_order == ["Charlie story", "Alpha story"]
