"""The keyless demo sells a team: the local checkout with a quantity, seats changed."""

import pytest
from django.test import Client

from subscriptions import teams
from subscriptions.models import StripeEvent, Subscriber
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.team_models import Team

pytestmark = pytest.mark.django_db


def test_a_team_through_the_local_checkout(demo, django_capture_on_commit_callbacks):
    manager = Subscriber.objects.create(email="boss@example.com", name="Nadia")
    client = Client()
    session = client.session
    session[SESSION_KEY] = manager.pk
    session[EPOCH_KEY] = manager.session_epoch
    session.save()

    checkout_url = client.post("/teams/", {"name": "The Newsroom", "seats": 6})["Location"]
    page = client.get(checkout_url.removeprefix("http://127.0.0.1:8000")).content.decode()
    assert "$220.80" in page  # 6 seats at $36.80
    with django_capture_on_commit_callbacks(execute=True):
        back = client.post(checkout_url, {"action": "pay"})
    team = Team.objects.get()
    assert back["Location"].startswith(teams.manager_url(team))
    assert (team.status, team.seats, team.amount) == ("active", 6, 22080)

    page_url = f"/teams/{team.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url, {"action": "seats", "seats": 8})
    team.refresh_from_db()
    assert (team.seats, team.amount) == (8, 8 * 3680)
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).exists()
