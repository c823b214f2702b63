"""A batch's cost stays per batch, not per content: readers' sections and formats add no queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from delivery import batches, by_hand
from delivery.models import Delivery
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.actions.account import do_set_digest_choices
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

SIX_CONTENTS = [
    (sections, digest_format)
    for sections in (None, ["world"], ["business"])
    for digest_format in ("full", "headlines")
]


def batch_queries(edition, group: str) -> int:
    ids = list(
        Delivery.objects.filter(subscriber__email__startswith=group)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    with CaptureQueriesContext(connection) as queries:
        report = batches.send_batch(edition.pk, ids[0], ids[-1])
    assert report.sent == len(ids) == 30
    return len(queries.captured_queries)


def test_six_contents_in_a_batch_cost_the_queries_of_one(smtp_server):
    world, business = make_section(slug="world"), make_section(slug="business")
    make_article(section=world)
    make_article(section=business)
    # Readers are written in address order: each group's deliveries are one range.
    two_contents = [(["world"], "full"), (["business"], "full")]
    for group, choices in (("a", two_contents), ("b", two_contents), ("c", SIX_CONTENTS)):
        for n in range(30):
            sections, digest_format = choices[n % len(choices)]
            do_set_digest_choices(
                make_subscriber(f"{group}{n:02d}@example.com"),
                sections=sections,
                days="mon,tue,wed,thu,fri",
                digest_format=digest_format,
            )
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)

    batch_queries(edition, "a")  # the first batch also creates the send's counters
    two = batch_queries(edition, "b")
    six = batch_queries(edition, "c")

    assert six == two
    assert len(smtp_server.received()) == 90
