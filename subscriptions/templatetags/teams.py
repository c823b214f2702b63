"""The account page's team panel: the reader's seat, and the teams they manage."""

from django import template

from subscriptions import teams
from subscriptions.models import Subscriber
from subscriptions.team_models import Team

register = template.Library()


@register.inclusion_tag("subscriptions/_team_panel.html")
def team_panel(subscriber: Subscriber) -> dict:
    managed = Team.objects.filter(manager=subscriber).order_by("name")
    return {
        "seat": teams.current_seat(subscriber),
        "managed": [(team, teams.manager_url(team)) for team in managed],
    }
