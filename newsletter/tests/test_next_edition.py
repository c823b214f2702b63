"""The editors' "Next edition" desk: curate, hold, preview and test-send."""

import datetime
import html

import pytest
from django.contrib.admin.models import LogEntry

from delivery import by_hand
from newsletter import desk, editions
from newsletter.models import Edition, EditionArticle
from newsletter.tests.factories import built_edition, make_article, make_staff
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def at(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso)


@pytest.fixture
def editor(client):
    user = make_staff("editor", first_name="Eddie")
    client.force_login(user)
    return user


@pytest.fixture
def three():
    return [
        make_article(title=title, published_ago=datetime.timedelta(hours=hours))
        for title, hours in [("Alpha", 3), ("Bravo", 2), ("Charlie", 1)]
    ]


def open_next(client) -> Edition:
    response = client.get("/admin/newsletter/edition/next/")
    assert response.status_code == 302
    edition = Edition.objects.get(date=editions.upcoming_edition_date())
    assert response.url == f"/admin/newsletter/edition/{edition.pk}/desk/"
    return edition


def curation(edition: Edition, order: list, left_out=(), note="") -> dict:
    data = {"editor_note": note}
    for position, article in enumerate(order, start=1):
        data[f"position_{article.pk}"] = str(position)
        if article not in left_out:
            data[f"include_{article.pk}"] = "on"
    return data


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Monday before the 06:00 (New York) send: Monday's.
        ("2026-11-30T10:00:00+00:00", MONDAY),
        # Saturday: Monday's.
        ("2026-11-28T15:00:00+00:00", MONDAY),
        # Monday afternoon, nothing was sent that morning: Tuesday's.
        ("2026-11-30T19:00:00+00:00", MONDAY + datetime.timedelta(days=1)),
        # Friday afternoon: Monday's.
        ("2026-12-04T19:00:00+00:00", datetime.date(2026, 12, 7)),
    ],
)
def test_the_next_edition_is_the_next_send_not_yet_started(now, expected):
    assert editions.upcoming_edition_date(at(now)) == expected


def test_after_the_morning_send_the_desk_prepares_the_next_day():
    make_article(published_ago=datetime.timedelta(days=1))
    monday = built_edition(MONDAY, now=at("2026-11-30T11:00:00+00:00"))
    Edition.objects.filter(pk=monday.pk).update(status=Edition.Status.SENT)
    assert editions.upcoming_edition_date(
        at("2026-11-30T11:01:00+00:00")
    ) == MONDAY + datetime.timedelta(days=1)
    # Held and not sent: editors still see it, to release it.
    Edition.objects.filter(pk=monday.pk).update(status=Edition.Status.HELD)
    assert editions.upcoming_edition_date(at("2026-11-30T19:00:00+00:00")) == MONDAY


def test_an_edition_sent_early_by_hand_hands_the_desk_to_the_next_one():
    # Monday's edition sent on Sunday with send_digest: Sunday afternoon the
    # editors are preparing Tuesday's, not looking at Monday's sent one.
    make_article(published_ago=datetime.timedelta(days=1))
    monday = built_edition(MONDAY, now=at("2026-11-29T15:00:00+00:00"))
    by_hand.send_edition(monday)
    assert editions.upcoming_edition_date(
        at("2026-11-29T16:00:00+00:00")
    ) == MONDAY + datetime.timedelta(days=1)


def test_the_desk_shows_what_the_digest_carries_in_order(client, editor, three):
    edition = open_next(client)

    page = client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content.decode()

    assert page.index("Alpha") < page.index("Bravo") < page.index("Charlie")
    assert 'name="editor_note"' in page
    # Every input has a label (keyboard and screen-reader use).
    for article in three:
        assert f'for="id_position_{article.pk}"' in page
        assert f'for="id_include_{article.pk}"' in page


def test_editors_reorder_leave_out_and_write_a_note(client, editor, three):
    alpha, bravo, charlie = three
    edition = open_next(client)

    response = client.post(
        f"/admin/newsletter/edition/{edition.pk}/desk/",
        curation(edition, [charlie, alpha, bravo], left_out=[bravo], note="A quiet day."),
    )

    assert response.status_code == 302
    edition.refresh_from_db()
    assert list(edition.ordered_articles()) == [charlie, alpha]
    assert edition.editor_note == "A quiet day."
    assert EditionArticle.objects.get(article=bravo).included is False
    entry = LogEntry.objects.get(object_id=str(edition.pk))
    assert entry.user == editor
    assert "Left out “Bravo”." in entry.change_message
    assert "Reordered the articles." in entry.change_message
    # Refreshing the edition (the morning send does) keeps it all.
    late = make_article(title="Delta", published_ago=datetime.timedelta(0))
    edition = built_edition(edition.date)
    assert list(edition.ordered_articles()) == [charlie, alpha, late]
    # And the email says so.
    message = desk.preview(edition, desk.SampleReader.PAYING)
    assert message.body.index("Charlie") < message.body.index("Alpha") < message.body.index("Delta")
    assert "Bravo" not in message.body
    assert "A quiet day." in message.body


def test_bad_positions_are_refused_and_nothing_changes(client, editor, three):
    edition = open_next(client)
    data = curation(edition, list(reversed(three)))
    data[f"position_{three[0].pk}"] = "first"

    response = client.post(f"/admin/newsletter/edition/{edition.pk}/desk/", data)

    assert response.status_code == 200
    assert "Enter a whole number." in response.content.decode()
    assert list(edition.ordered_articles()) == three


def test_a_held_edition_is_not_sent_until_released(client, editor, three):
    edition = open_next(client)

    client.post(f"/admin/newsletter/edition/{edition.pk}/hold/")
    edition.refresh_from_db()
    assert edition.status == Edition.Status.HELD
    with pytest.raises(by_hand.EditionHeld):
        by_hand.send_edition(edition)
    assert (
        "Release this edition"
        in client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content.decode()
    )

    client.post(f"/admin/newsletter/edition/{edition.pk}/release/")
    edition.refresh_from_db()
    assert edition.status == Edition.Status.DRAFT
    assert [e.get_change_message() for e in LogEntry.objects.order_by("pk")] == [
        "Held: this edition will not be sent until it is released.",
        "Released: this edition goes out at the next morning send.",
    ]
    assert client.get(f"/admin/newsletter/edition/{edition.pk}/hold/").status_code == 405


def test_an_edition_being_sent_cannot_be_changed_but_can_be_held(client, editor, three):
    edition = open_next(client)
    by_hand.send_edition(edition)

    response = client.post(
        f"/admin/newsletter/edition/{edition.pk}/desk/",
        curation(edition, list(reversed(three)), note="Too late"),
        follow=True,
    )

    assert "can no longer change" in response.content.decode()
    edition.refresh_from_db()
    assert edition.editor_note == ""
    assert list(edition.ordered_articles()) == three
    # A hold still stops the zones whose morning has not come.
    client.post(f"/admin/newsletter/edition/{edition.pk}/hold/")
    edition.refresh_from_db()
    assert edition.status == Edition.Status.HELD and edition.held_mid_send


@pytest.mark.parametrize(
    ("reader", "expected", "absent"),
    [
        ("paying", None, ["free trial", "update your card"]),
        ("trialing", "Your free trial ends on", ["could not take your last payment"]),
        ("past_due", "could not take your last payment", ["free trial ends"]),
    ],
)
def test_the_preview_is_the_exact_email_each_kind_of_reader_gets(
    client, editor, three, reader, expected, absent
):
    edition = open_next(client)

    response = client.get(f"/admin/newsletter/edition/{edition.pk}/desk/?reader={reader}")

    page = response.content.decode()
    message = response.context["message"]
    email_html = message.html
    assert html.escape(email_html, quote=True) in page  # the HTML, in a sandboxed frame
    assert 'sandbox srcdoc="' in page
    assert html.escape(message.body, quote=False) in page  # and the text part
    for text in [message.body, email_html]:
        if expected:
            assert expected in text
        for phrase in absent:
            assert phrase not in text
    assert message.subject == edition.subject
    # Previews write nothing.
    from subscriptions.models import Membership, Subscriber

    assert not Subscriber.objects.exists()
    assert not Membership.objects.exists()


def test_send_a_test_to_me_sends_the_real_email(client, editor, three, smtp_server):
    edition = open_next(client)

    response = client.post(
        f"/admin/newsletter/edition/{edition.pk}/test/", {"reader": "trialing"}, follow=True
    )

    assert "Test email sent to editor@example.com." in response.content.decode()
    [mail] = smtp_server.received()
    assert mail.rcpt_tos == ["editor@example.com"]
    assert mail.message["Subject"] == f"[Test] {edition.subject}"
    assert "Good morning, Eddie." in mail.text
    assert "Your free trial ends on" in mail.text
    assert "Charlie" in mail.html
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_test_send_explains_what_went_wrong(client, editor, three, smtp_server):
    edition = open_next(client)
    smtp_server.inject_faults(refuse_recipients={"editor@example.com": [550, "No such user"]})

    response = client.post(
        f"/admin/newsletter/edition/{edition.pk}/test/", {"reader": "paying"}, follow=True
    )
    assert "The mail server did not take the test email" in response.content.decode()

    editor.email = ""
    editor.save()
    response = client.post(
        f"/admin/newsletter/edition/{edition.pk}/test/", {"reader": "paying"}, follow=True
    )
    assert "Your account has no email address" in response.content.decode()


def test_with_nothing_published_the_desk_says_so(client, editor):
    response = client.get("/admin/newsletter/edition/next/")

    assert response.status_code == 200
    assert "Nothing has been published since the last edition" in response.content.decode()
    assert not Edition.objects.exists()
