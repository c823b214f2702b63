"""Send health: bounce and complaint rates per edition as results arrive, alerts and pauses."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from delivery import batches, by_hand, recovery
from delivery.deliverability import health, suppression
from delivery.models import BounceEvent, Delivery, SendAlert, SendPause
from newsletter.tests.factories import built_edition, make_article, make_staff
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.admin import run_admin_action
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def sent(settings):
    """An edition sent to `count` readers, through Django's in-memory mailer."""
    settings.MAILERS = LOCMEM
    make_staff("desk", email="desk@briefing.example")

    def send(count: int):
        make_article()
        # In bulk (no signals): how many readers there are matters here, not how they came.
        readers = Subscriber.objects.bulk_create(
            Subscriber(email=f"reader{n:03d}@example.com") for n in range(count)
        )
        Membership.objects.bulk_create(
            Membership(subscriber=reader, status=Membership.Status.ACTIVE) for reader in readers
        )
        edition = built_edition(MONDAY)
        by_hand.send_edition_in_process(edition.pk)
        mail.outbox.clear()
        return edition, readers

    return send


def result(reader, kind, capture):
    delivery = Delivery.objects.get(subscriber=reader)
    with capture(execute=True):
        suppression.do_record(
            reader.pk, kind, source=BounceEvent.Source.MAILBOX, delivery_id=delivery.pk
        )


def test_a_hard_bounce_rate_above_two_percent_alerts_staff_once(
    sent, django_capture_on_commit_callbacks
):
    edition, readers = sent(60)
    result(readers[0], BounceEvent.Kind.HARD, django_capture_on_commit_callbacks)
    assert health.edition_health(edition.pk).hard_bounce_percent == pytest.approx(100 / 60)
    assert not SendAlert.objects.exists()  # 1.7%
    assert mail.outbox == []

    result(readers[1], BounceEvent.Kind.HARD, django_capture_on_commit_callbacks)  # 3.3%
    [alert] = SendAlert.objects.all()
    assert alert.kind == SendAlert.Kind.HARD_BOUNCES and "3.33% (2 of 60)" in alert.message
    [email] = mail.outbox
    assert email.to == ["desk <desk@briefing.example>"]
    assert "3.33%" in email.body

    result(readers[2], BounceEvent.Kind.HARD, django_capture_on_commit_callbacks)
    assert SendAlert.objects.count() == 1 and len(mail.outbox) == 1  # once per edition
    assert not SendPause.objects.exists()  # bounces alert; only complaints pause


def test_complaints_above_a_tenth_of_a_percent_alert(sent, django_capture_on_commit_callbacks):
    _, readers = sent(500)
    result(readers[0], BounceEvent.Kind.COMPLAINT, django_capture_on_commit_callbacks)  # 0.2%
    assert list(SendAlert.objects.values_list("kind", flat=True)) == ["complaints"]
    assert not SendPause.objects.exists()


def test_complaints_above_three_tenths_pause_the_days_sends_until_staff_resume(
    sent, django_capture_on_commit_callbacks, client, clock
):
    edition, readers = sent(200)
    result(readers[0], BounceEvent.Kind.COMPLAINT, django_capture_on_commit_callbacks)  # 0.5%
    pause = SendPause.objects.get()
    assert pause.resumed_at is None and "0.50%" in pause.reason
    assert {a.kind for a in SendAlert.objects.all()} == {"complaints", "paused"}

    # The day's later sends wait, queued (a later zone's reader, say).
    late = make_subscriber("late@example.com")
    delivery = Delivery.objects.create(
        edition=edition, subscriber=late, status=Delivery.Status.QUEUED
    )
    report = batches.send_batch(edition.pk, delivery.pk, delivery.pk)
    assert report.sent == 0
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED
    # Nor does the sweep keep restarting it: the rows wait for staff.
    type(edition).objects.filter(pk=edition.pk).update(status=edition.Status.SENDING)
    clock.shift(datetime.timedelta(minutes=5))
    assert recovery.editions_to_resume() == []

    # The desk says so, on every admin page.
    staff = make_staff("chief", editor=False, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/").content.decode()
    assert "Sends paused" in page and "0.50%" in page

    run_admin_action(client, "resume", [pause])
    pause.refresh_from_db()
    assert pause.resumed_by == staff
    assert health.sends_paused() is None
    assert recovery.editions_to_resume() == [edition]  # what waited goes now
    assert batches.send_batch(edition.pk, delivery.pk, delivery.pk).sent == 1
    assert "Sends paused" not in client.get("/admin/").content.decode()


def test_a_pause_holds_only_its_own_day(sent, django_capture_on_commit_callbacks, clock):
    _, readers = sent(200)
    result(readers[0], BounceEvent.Kind.COMPLAINT, django_capture_on_commit_callbacks)
    assert health.sends_paused() is not None
    clock.shift(24 * 60 * 60)
    assert health.sends_paused() is None


# ---------------------------------------------------------------- hostile complaints


def complaint(reader, capture, report_id, delivery=None):
    """A complaint about the reader's digest, as each report from the mailbox records it."""
    delivery = delivery or Delivery.objects.filter(subscriber=reader).latest("pk")
    with capture(execute=True):
        return suppression.do_record(
            reader.pk,
            BounceEvent.Kind.COMPLAINT,
            source=BounceEvent.Source.MAILBOX,
            delivery_id=delivery.pk,
            report_id=report_id,
        )


def test_a_reader_weighs_once_in_send_health_however_many_complaints_they_file(
    sent, django_capture_on_commit_callbacks
):
    # Five reports from one reader, each with a Message-ID of their choosing,
    # were five complaints: 1% of 500, a pause.
    edition, readers = sent(500)
    events = [
        complaint(readers[0], django_capture_on_commit_callbacks, f"<forged-{n}@evil.example>")
        for n in range(5)
    ]
    assert events[0] is not None and events[1:] == [None] * 4
    assert BounceEvent.objects.count() == 1
    rates = health.edition_health(edition.pk)
    assert (rates.complaints, rates.sent) == (1, 500)
    assert not SendPause.objects.exists()  # 0.2%: alert only
    assert list(SendAlert.objects.values_list("kind", flat=True)) == ["complaints"]


def test_rates_count_readers_not_events(sent):
    # Rows written before the one-complaint rule (or a bounce reported by
    # both the SMTP answer and a DSN) still weigh one reader once.
    edition, readers = sent(100)
    delivery = Delivery.objects.get(subscriber=readers[0])
    for report in ("<a@x>", "<b@x>"):
        BounceEvent.objects.create(
            kind=BounceEvent.Kind.HARD,
            source=BounceEvent.Source.MAILBOX,
            subscriber=readers[0],
            delivery=delivery,
            edition=edition,
            report_id=report,
        )
    assert health.edition_health(edition.pk).hard_bounces == 1


def test_an_old_editions_complaints_never_pause_todays_sends(
    sent, django_capture_on_commit_callbacks, clock
):
    old, readers = sent(200)
    clock.shift(datetime.timedelta(weeks=6))
    complaint(readers[0], django_capture_on_commit_callbacks, "<late@isp.example>")
    assert health.edition_health(old.pk).complaint_percent > 0.3
    assert not SendPause.objects.exists()
    assert health.sends_paused() is None


def test_an_edition_pauses_while_any_readers_morning_of_its_date_may_be_to_come(
    sent, django_capture_on_commit_callbacks, clock
):
    # Monday's mornings end last at UTC-12: Tuesday 12:00 UTC.
    edition, readers = sent(200)
    tuesday_noon = datetime.datetime.combine(
        MONDAY + datetime.timedelta(days=1), datetime.time(12), datetime.UTC
    )
    assert health.mornings_under_way(edition, tuesday_noon - datetime.timedelta(minutes=1))
    assert not health.mornings_under_way(edition, tuesday_noon)
    clock.move_to(tuesday_noon)
    complaint(readers[0], django_capture_on_commit_callbacks, "<late@isp.example>")
    assert not SendPause.objects.exists()


def test_once_staff_resume_a_reader_already_counted_cannot_pause_again(
    sent, django_capture_on_commit_callbacks, client, clock
):
    edition, readers = sent(200)
    complaint(readers[0], django_capture_on_commit_callbacks, "<first@isp.example>")
    pause = SendPause.objects.get()
    staff = make_staff("chief", editor=False, is_superuser=True)
    client.force_login(staff)
    run_admin_action(client, "resume", [pause])

    # The next newsroom day, Monday's mornings still under way west of here.
    clock.shift(datetime.timedelta(hours=20))
    assert health.mornings_under_way(edition, timezone.now())
    assert complaint(readers[0], django_capture_on_commit_callbacks, "<again@evil>") is None
    assert SendPause.objects.count() == 1
    assert health.sends_paused() is None
