"""The weekly summary: opt-in per staff member, the figures they may see, once a week."""

import datetime
import smtplib

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from dashboard.models import StaffSettings
from dashboard.summary import do_send_weekly_summaries, week_of
from newsletter.tests.factories import make_staff
from subscriptions.models import Membership
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = pytest.mark.django_db
NOW = MONDAY_BEFORE_SEND  # Monday 30 November 2026, 04:00 in New York


def publisher(username="publisher", email="publisher@example.com"):
    user = make_staff(username, editor=False, email=email)
    user.user_permissions.add(Permission.objects.get(codename="view_membership"))
    return user


def test_staff_opt_in_on_the_dashboard_page(client):
    user = publisher()
    client.force_login(user)
    page = client.get("/admin/dashboard/").content.decode()
    assert 'name="weekly_summary"' in page and "checked" not in page.split("weekly-summary")[1][:40]
    response = client.post("/admin/dashboard/weekly-summary/", {"weekly_summary": "on"})
    assert response.status_code == 302
    assert StaffSettings.objects.get(user=user).weekly_summary is True
    assert 'id="weekly-summary" checked' in client.get("/admin/dashboard/").content.decode()
    client.post("/admin/dashboard/weekly-summary/", {})
    assert StaffSettings.objects.get(user=user).weekly_summary is False


def test_the_opt_in_needs_a_post_with_the_csrf_token(client):
    from django.test import Client

    user = publisher()
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(user)
    assert (
        checked.post("/admin/dashboard/weekly-summary/", {"weekly_summary": "on"}).status_code
        == 403
    )
    client.force_login(user)
    assert client.get("/admin/dashboard/weekly-summary/").status_code == 405
    assert not StaffSettings.objects.filter(weekly_summary=True).exists()


def test_staff_who_may_see_no_figure_cannot_opt_in(client):
    client.force_login(make_staff("intern", editor=False))
    assert (
        client.post("/admin/dashboard/weekly-summary/", {"weekly_summary": "on"}).status_code == 403
    )


def test_the_summary_reaches_those_who_opted_in_once_a_week(smtp_server):
    make_subscriber(membership=Membership.Status.ACTIVE, membership_fields={"amount": 4600})
    boss = publisher()
    editor = make_staff("editor", email="editor@example.com")
    quiet = publisher("quiet", "quiet@example.com")
    for user in (boss, editor):
        StaffSettings.objects.create(user=user, weekly_summary=True)
    StaffSettings.objects.create(user=quiet, weekly_summary=False)

    assert do_send_weekly_summaries(NOW) == 2
    assert smtp_server.recipients() == ["editor@example.com", "publisher@example.com"]
    mails = {mail.rcpt_tos[0]: mail for mail in smtp_server.received()}
    summary = mails["publisher@example.com"]
    assert summary.message["Subject"] == "The Morning Briefing: the week to 30 November 2026"
    # The same figures as the page: the publisher's has the money...
    assert "MRR $3.83 · ARR $46.00 · 1 paying" in summary.text
    assert "MRR $3.83 · ARR $46.00 · 1 paying" in summary.html
    assert "Readers by state" in summary.html and ">State</th>" in summary.html
    # ...the editor's has the sends only.
    assert "EDITIONS" in mails["editor@example.com"].text
    assert "MRR" not in mails["editor@example.com"].text
    assert week_of(NOW) == datetime.date(2026, 11, 30)

    # The same week again (beat and the command, say): nothing more.
    assert do_send_weekly_summaries(NOW + datetime.timedelta(days=3)) == 0
    assert len(smtp_server.received()) == 2
    # Next Monday's goes out.
    assert do_send_weekly_summaries(NOW + datetime.timedelta(days=7)) == 2


def test_a_failed_send_is_tried_again_at_the_next_run(smtp_server):
    StaffSettings.objects.create(user=publisher(), weekly_summary=True)
    smtp_server.inject_faults(data_reply=[451, "4.3.0 Try again later"], refuse_data_after=0)
    with pytest.raises(smtplib.SMTPDataError):
        do_send_weekly_summaries(NOW)
    assert StaffSettings.objects.get().summary_sent_for is None
    smtp_server.clear_faults()
    assert do_send_weekly_summaries(NOW) == 1


def test_the_command_sends_as_of_a_moment(smtp_server, capsys):
    StaffSettings.objects.create(user=publisher(), weekly_summary=True)
    call_command("send_weekly_summary", "--at", "2026-12-07T12:00Z")
    assert "Sent the weekly summary to 1 staff member(s)." in capsys.readouterr().out
    [mail] = smtp_server.received()
    assert mail.message["Subject"] == "The Morning Briefing: the week to 7 December 2026"
    assert StaffSettings.objects.get().summary_sent_for == datetime.date(2026, 12, 7)
