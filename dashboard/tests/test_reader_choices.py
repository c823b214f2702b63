"""The dashboard's readers' choices: who follows each section, the formats and the days."""

import pytest

from dashboard import metrics
from newsletter.tests.factories import make_section, make_staff
from subscriptions.actions.account import do_set_digest_choices
from subscriptions.models import Membership
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def readers():
    *_, science = (
        make_section(name=name, slug=name.lower(), position=n)
        for n, name in enumerate(["World", "Business", "Science"])
    )
    make_subscriber("all@example.com")
    for email, sections, days, digest_format in [
        ("world@example.com", ["world"], "mon,wed,fri", "headlines"),
        ("both@example.com", ["world", "business"], "mon", "full"),
        ("lapsed@example.com", ["business"], "tue", "headlines"),
        ("science@example.com", ["science"], "fri", "full"),
    ]:
        reader = make_subscriber(email)
        do_set_digest_choices(reader, sections=sections, days=days, digest_format=digest_format)
    # Not entitled: not counted.
    Membership.objects.filter(subscriber__email="lapsed@example.com").update(
        status=Membership.Status.CANCELED
    )
    science.delete()  # its reader now follows every section


def test_readers_per_section_formats_and_days_count_those_who_get_the_digest(readers):
    choices = metrics.reader_choices(MONDAY_BEFORE_SEND)

    assert choices.every_section == 2  # all@, and science@ whose section is gone
    assert [(t.label, t.count) for t in choices.sections] == [("World", 4), ("Business", 3)]
    assert [(t.label, t.count) for t in choices.formats] == [
        ("Full stories", 3),
        ("Headlines only", 1),
    ]
    assert [(t.label, t.count) for t in choices.days] == [
        ("Monday", 3),
        ("Tuesday", 1),
        ("Wednesday", 2),
        ("Thursday", 1),
        ("Friday", 3),
    ]


def test_the_figure_shows_them_to_editors(readers, client):
    client.force_login(make_staff("editor"))
    page = client.get("/admin/dashboard/choices/").content.decode()

    assert "Readers per section" in page
    assert "Now: 3 full stories, 1 headlines only" in page
    assert client.get("/admin/dashboard/choices/?format=csv").status_code == 200
