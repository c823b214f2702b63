"""Team subscriptions: bought with a quantity, mirrored in any order, seats claimed and freed.

Through the real pages and the real webhook endpoint, with Stripe's
recorded shapes (a subscription whose item has a quantity and the tiered
team price) answered by FakeStripe.
"""

import datetime
import re

import pytest
from django.test import Client

from subscriptions import teams
from subscriptions.actions import teams as team_actions
from subscriptions.models import Membership, ReaderEmail, Subscriber
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.team_models import Team, TeamSeat
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.concurrency import run_at_once

pytestmark = pytest.mark.django_db

SEAT_LINK = re.compile(r"http://127\.0\.0\.1:8000(/teams/seat/[^/\s]+/)")


def signed_in(reader: Subscriber) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return client


def managing(team: Team) -> Client:
    """A browser that opened the team's manager link (the signed link, into its session)."""
    client = Client()
    answer = client.get(f"/teams/manage/{teams.manager_token(team)}/")
    assert answer.status_code == 302 and answer["Location"] == f"/teams/{team.pk}/"
    assert answer["Referrer-Policy"] == "no-referrer"
    return client


@pytest.fixture
def team_price(fake_stripe):
    price = stripe_objects.load("price_team")
    fake_stripe.prices.append(price)
    return price


def team_subscription(team: Team, status: str = "active", seats: int = 3, **changes) -> dict:
    data = stripe_objects.subscription(
        status,
        id=f"sub_Team{team.pk}",
        customer=team.stripe_customer_id,
        metadata={"team_id": str(team.pk)},
        **changes,
    )
    item = data["items"]["data"][0]
    item["quantity"] = seats
    item["price"] = stripe_objects.load("price_team")
    return data


@pytest.fixture
def manager():
    return make_subscriber("boss@newsroom.example", name="Nadia", membership=None)


def buy(manager, fake_stripe, seats: int = 3, name: str = "The Newsroom") -> Team:
    answer = signed_in(manager).post("/teams/", {"name": name, "seats": seats})
    assert answer.status_code == 303, answer.content
    assert answer["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    return Team.objects.get(name=name)


@pytest.fixture
def team(manager, fake_stripe, team_price, webhooks):
    """A team of 3 seats, bought and paid."""
    team = buy(manager, fake_stripe)
    fake_stripe.set_subscription(team_subscription(team))
    assert (
        webhooks.post("customer.subscription.created", team_subscription(team)).status_code == 200
    )
    team.refresh_from_db()
    return team


def test_a_team_is_bought_at_checkout_with_a_quantity_of_the_seat_price(
    manager, fake_stripe, team_price, settings
):
    settings.STRIPE_AUTOMATIC_TAX = True
    settings.STRIPE_TAX_ID_COLLECTION = True
    team = buy(manager, fake_stripe, seats=7)

    [customer] = fake_stripe.requests("POST", "/v1/customers")
    assert customer["metadata[team_id]"] == str(team.pk)
    assert customer["name"] == "The Newsroom" and customer["email"] == "boss@newsroom.example"
    assert (team.stripe_customer_id or "").startswith("cus_test")
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["mode"] == "subscription"
    assert session["customer"] == team.stripe_customer_id
    assert session["line_items[0][price]"] == team_price["id"]
    assert session["line_items[0][quantity]"] == "7"
    assert session["subscription_data[metadata][team_id]"] == str(team.pk)
    assert "subscription_data[trial_period_days]" not in session
    # Invoices and tax as the individual plan's.
    assert session["automatic_tax[enabled]"] == "true"
    assert session["tax_id_collection[enabled]"] == "true"
    assert session["success_url"].startswith(teams.manager_url(team))
    assert (team.manager, team.seats_requested, team.status) == (manager, 7, "incomplete")


def test_the_volume_discount(settings):
    assert teams.seat_price(4) == 4600 and teams.yearly_price(4) == 18400
    assert teams.seat_price(5) == 3680 and teams.yearly_price(20) == 73600
    assert teams.price_tiers() == [
        {"up_to": 4, "unit_amount": 4600},
        {"up_to": "inf", "unit_amount": 3680},
    ]


def test_buying_needs_a_signed_in_reader_and_a_sane_number_of_seats(
    client, manager, fake_stripe, team_price
):
    assert "sign in" in client.get("/teams/").content.decode()
    assert client.post("/teams/", {"name": "X", "seats": 3}).status_code == 200
    assert not Team.objects.exists()
    for seats in (1, 501, "many"):
        answer = signed_in(manager).post("/teams/", {"name": "X", "seats": seats})
        assert answer.status_code == 400
    assert not Team.objects.exists()
    assert fake_stripe.requests("POST", "/v1/checkout/sessions") == []


@pytest.mark.parametrize(
    "order",
    [
        ("checkout.session.completed", "customer.subscription.created", "invoice.paid"),
        ("invoice.paid", "customer.subscription.created", "checkout.session.completed"),
        ("customer.subscription.created", "invoice.paid", "checkout.session.completed"),
    ],
)
def test_the_team_follows_its_subscription_whatever_order_the_events_come_in(
    manager, fake_stripe, team_price, webhooks, order
):
    team = buy(manager, fake_stripe, seats=5)
    [session] = fake_stripe.sessions.values()
    subscription = team_subscription(team, seats=5)
    fake_stripe.complete_session(session["id"], subscription)
    invoice = stripe_objects.invoice(
        "invoice_paid", id="in_Team1", customer=team.stripe_customer_id
    )
    invoice["parent"]["subscription_details"]["subscription"] = subscription["id"]
    fake_stripe.set_invoice(invoice)
    # Each event carries an older copy; the handlers fetch Stripe's latest.
    stale = {**subscription, "status": "incomplete"}
    bodies = {
        "checkout.session.completed": session,
        "customer.subscription.created": stale,
        "invoice.paid": invoice,
    }
    for event_type in order:
        assert webhooks.post(event_type, bodies[event_type]).status_code == 200
    team.refresh_from_db()
    assert (team.status, team.seats, team.amount) == ("active", 5, 5 * 3680)
    assert team.stripe_subscription_id == subscription["id"]
    # The team's subscription is not mistaken for a reader's membership.
    assert not Membership.objects.filter(stripe_subscription_id=subscription["id"]).exists()


def join(team: Team, email: str, mailoutbox, capture, client: Client | None = None, **form):
    """The invite link's form, the emailed seat link, its button: the answer to the button."""
    client = client or Client()
    with capture(execute=True):
        answer = client.post(
            f"/teams/join/{teams.invite_token(team)}/",
            {
                "email": email,
                "name": form.get("name", ""),
                "time_zone": form.get("time_zone", "Asia/Tokyo"),
            },
        )
    assert answer.status_code == 200, answer.content
    mail = mailoutbox[-1]
    assert mail.to == [email]
    link = SEAT_LINK.search(mail.body)
    assert link is not None, mail.body
    page = client.get(link.group(1), follow=True)
    assert page.status_code == 200
    with capture(execute=True):
        return client, client.post("/teams/seat/", form.get("post", {}))


def test_a_reader_takes_a_seat_with_their_own_address_and_is_a_full_reader(
    team, mailoutbox, django_capture_on_commit_callbacks
):
    client, answer = join(
        team, "ines@newsroom.example", mailoutbox, django_capture_on_commit_callbacks, name="Inès"
    )
    assert answer.status_code == 303 and answer["Location"] == "/account/"
    reader = Subscriber.objects.get(email="ines@newsroom.example")
    assert (reader.time_zone, reader.name) == ("Asia/Tokyo", "Inès")
    assert TeamSeat.objects.get(subscriber=reader).team == team
    assert reader.is_entitled and Subscriber.objects.entitled().filter(pk=reader.pk).exists()
    account = client.get("/account/").content.decode()
    assert "You have a seat on <strong>The Newsroom</strong>" in account
    # The manager's page lists them.
    manage = managing(team).get(f"/teams/{team.pk}/").content.decode()
    assert "ines@newsroom.example" in manage and "1 of 3 taken" in manage


def test_a_forged_or_replaced_invite_link_takes_no_seat(team, client):
    assert client.get("/teams/join/1:forged/").status_code == 404
    old = teams.invite_token(team)
    team_actions.do_new_invite_link(team)
    assert client.get(f"/teams/join/{old}/").status_code == 404
    assert client.get("/teams/manage/1:forged/").status_code == 404
    # The page itself: only for a browser that opened the link, or the manager signed in.
    assert client.get(f"/teams/{team.pk}/").status_code == 404
    assert client.post(f"/teams/{team.pk}/", {"action": "new_invite"}).status_code == 404
    assert signed_in(team.manager).get(f"/teams/{team.pk}/").status_code == 200


def test_every_seat_taken_refuses_the_next_claim(
    team, mailoutbox, django_capture_on_commit_callbacks
):
    for number in range(3):
        join(team, f"r{number}@newsroom.example", mailoutbox, django_capture_on_commit_callbacks)
    _, answer = join(team, "late@newsroom.example", mailoutbox, django_capture_on_commit_callbacks)
    assert answer.status_code == 409
    assert "Every seat of this team is taken" in answer.content.decode()
    assert TeamSeat.objects.filter(team=team).count() == 3
    assert not Subscriber.objects.filter(email="late@newsroom.example").exists()


@pytest.mark.django_db(transaction=True)
def test_readers_racing_for_the_last_seat_get_one_seat_between_them(
    manager, fake_stripe, team_price
):
    team = Team.objects.create(
        name="Race", manager=manager, seats=2, status="active", stripe_customer_id="cus_Race"
    )
    team_actions.do_claim_seat(
        team.pk, team.invite_secret, email="first@example.com", name="", time_zone="UTC"
    )
    queue = [f"racer{n}@example.com" for n in range(4)]

    def claim() -> str:
        email = queue.pop()
        try:
            team_actions.do_claim_seat(
                team.pk, team.invite_secret, email=email, name="", time_zone="UTC"
            )
        except team_actions.NoSeatLeft:
            return "no seat"
        return "seat"

    results = run_at_once(claim, times=4)
    assert sorted(results) == ["no seat", "no seat", "no seat", "seat"]
    assert TeamSeat.objects.filter(team=team, removed_at__isnull=True).count() == 2


def test_a_reader_who_pays_is_offered_to_move_and_their_plan_is_cancelled_prorated(
    team, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, webhooks
):
    payer = make_stripe_member(
        "active",
        email="payer@newsroom.example",
        customer_id="cus_Payer",
        subscription_id="sub_Payer",
    )
    fake_stripe.set_subscription(
        stripe_objects.subscription("active", id="sub_Payer", customer="cus_Payer")
    )
    fake_stripe.cancel_route()
    client, refused = join(
        team, "payer@newsroom.example", mailoutbox, django_capture_on_commit_callbacks
    )
    assert refused.status_code == 409
    assert "You pay for your own membership" in refused.content.decode()
    assert not TeamSeat.objects.filter(subscriber=payer).exists()
    assert fake_stripe.requests("DELETE", "/v1/subscriptions/sub_Payer") == []

    with django_capture_on_commit_callbacks(execute=True):
        moved = client.post("/teams/seat/", {"move_own_plan": "on"})
    assert moved.status_code == 303
    assert TeamSeat.objects.get(subscriber=payer).team == team
    [cancel] = fake_stripe.requests("DELETE", "/v1/subscriptions/sub_Payer")
    assert (cancel["prorate"], cancel["invoice_now"]) == ("true", "true")
    assert cancel["_idempotency_key"]
    # Their own plan ending (Stripe's event through the real endpoint) does
    # not end their briefing, and they are not told it did: the seat carries it.
    ReaderEmail.objects.create(subscriber=payer, kind=ReaderEmail.Kind.WELCOME, cause="sub_Payer")
    webhooks.post(
        "customer.subscription.deleted",
        stripe_objects.subscription("canceled", id="sub_Payer", customer="cus_Payer"),
    )
    assert Membership.objects.get(subscriber=payer).status == "canceled"
    assert Subscriber.objects.get(pk=payer.pk).is_entitled
    assert not ReaderEmail.objects.filter(
        subscriber=payer, kind=ReaderEmail.Kind.MEMBERSHIP_ENDED
    ).exists()


def test_a_removed_member_reads_until_the_end_of_their_day_then_is_offered_a_trial(
    team, mailoutbox, django_capture_on_commit_callbacks, clock
):
    join(
        team,
        "ines@newsroom.example",
        mailoutbox,
        django_capture_on_commit_callbacks,
        time_zone="Asia/Tokyo",
    )
    seat = TeamSeat.objects.get()
    manage = managing(team)
    with django_capture_on_commit_callbacks(execute=True):
        answer = manage.post(f"/teams/{team.pk}/", {"action": "remove", "seat": seat.pk})
    assert answer.status_code == 303
    seat.refresh_from_db()
    # 09:00 UTC is 18:00 in Tokyo: the day ends at 15:00 UTC.
    assert seat.access_until == datetime.datetime(2026, 11, 30, 15, 0, tzinfo=datetime.UTC)
    reader = seat.subscriber
    assert reader.is_entitled
    ended = mailoutbox[-1]
    assert ended.to == ["ines@newsroom.example"]
    assert "until 1 December 2026, 00:00 (Asia/Tokyo time)" in ended.body
    assert "free 14-day trial" in ended.body
    assert teams.taken(team) == 0  # the seat is free at once
    clock.move_to(datetime.datetime(2026, 11, 30, 15, 0, 1, tzinfo=datetime.UTC))
    assert not reader.is_entitled
    account = signed_in(reader).get("/account/").content.decode()
    assert "Start my free 14-day trial" in account


def test_seats_are_added_prorated_and_reduced_from_the_renewal(
    team, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    manage = managing(team)
    url = f"/teams/{team.pk}/"
    manage.post(url, {"action": "seats", "seats": 6})
    [added] = fake_stripe.requests("POST", f"/v1/subscriptions/{team.stripe_subscription_id}")
    assert (added["items[0][quantity]"], added["proration_behavior"]) == ("6", "always_invoice")
    team.refresh_from_db()
    assert (team.seats, team.amount) == (6, 6 * 3680)

    for number in range(4):
        join(team, f"r{number}@newsroom.example", mailoutbox, django_capture_on_commit_callbacks)
    page = manage.post(url, {"action": "seats", "seats": 3}, follow=True).content.decode()
    assert "4 seats are taken" in page
    manage.post(url, {"action": "seats", "seats": 4})
    reduced = fake_stripe.requests("POST", f"/v1/subscriptions/{team.stripe_subscription_id}")[-1]
    assert (reduced["items[0][quantity]"], reduced["proration_behavior"]) == ("4", "none")
    team.refresh_from_db()
    assert team.seats == 4


def test_a_team_that_lapses_takes_every_seat_with_it(
    team, fake_stripe, webhooks, mailoutbox, django_capture_on_commit_callbacks, clock
):
    for number in range(2):
        join(team, f"r{number}@newsroom.example", mailoutbox, django_capture_on_commit_callbacks)
    members = Subscriber.objects.filter(team_seats__team=team)
    assert Subscriber.objects.entitled().filter(pk__in=members).count() == 2

    # The renewal fails: past due, still read within the grace period...
    fake_stripe.set_subscription(team_subscription(team, "past_due"))
    webhooks.post("customer.subscription.updated", team_subscription(team, "past_due"))
    assert Subscriber.objects.entitled().filter(pk__in=members).count() == 2
    clock.shift(datetime.timedelta(days=8))
    assert Subscriber.objects.entitled().filter(pk__in=members).count() == 0
    # ...then Stripe ends it; a stale "active" copy later does not revive it.
    fake_stripe.set_subscription(team_subscription(team, "canceled"))
    webhooks.post("customer.subscription.deleted", team_subscription(team, "canceled"))
    fake_stripe.set_subscription(team_subscription(team, "active"))
    webhooks.post("customer.subscription.updated", team_subscription(team, "active"))
    team.refresh_from_db()
    assert team.status == "canceled"
    assert Subscriber.objects.entitled().filter(pk__in=members).count() == 0
    assert "not active" in Client().get(f"/teams/join/{teams.invite_token(team)}/").content.decode()


def test_a_seat_holder_is_one_row_of_the_audience_even_with_a_past_seat(team, manager):
    reader = make_subscriber("both@example.com", membership="active")
    other = Team.objects.create(name="Old", manager=manager, seats=2, status="active")
    TeamSeat.objects.create(
        team=other,
        subscriber=reader,
        claimed_at=team.created_at,
        removed_at=team.created_at,
        access_until=team.created_at + datetime.timedelta(days=1),
    )
    TeamSeat.objects.create(team=team, subscriber=reader, claimed_at=team.created_at)
    assert list(Subscriber.objects.entitled().filter(email="both@example.com")) == [reader]


def test_staff_see_teams_and_their_seats_read_only(
    team, admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    join(team, "ines@newsroom.example", mailoutbox, django_capture_on_commit_callbacks)
    listing = admin_client.get("/admin/subscriptions/team/").content.decode()
    assert "The Newsroom" in listing and "boss@newsroom.example" in listing
    page = admin_client.get(f"/admin/subscriptions/team/{team.pk}/change/").content.decode()
    assert "ines@newsroom.example" in page
    assert admin_client.get("/admin/subscriptions/team/add/").status_code == 403


def test_the_hourly_reconciliation_catches_a_lapse_whose_event_was_lost(
    team, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    from subscriptions.tasks import reconcile_memberships

    join(team, "ines@newsroom.example", mailoutbox, django_capture_on_commit_callbacks)
    reader = Subscriber.objects.get(email="ines@newsroom.example")
    assert reader.is_entitled
    fake_stripe.set_subscription(team_subscription(team, "canceled"))  # no event arrives
    assert reconcile_memberships() >= 1
    team.refresh_from_db()
    assert team.status == "canceled"
    assert not reader.is_entitled


@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_a_seat_holder_without_a_membership_of_their_own_gets_the_digest(
    smtp_server, manager, settings
):
    from django.core.management import call_command

    from newsletter.tests.factories import make_article

    team = Team.objects.create(name="Desk", manager=manager, seats=2, status="active")
    seated = make_subscriber("seated@example.com", membership=None)
    TeamSeat.objects.create(team=team, subscriber=seated, claimed_at=team.created_at)
    lapsed = Team.objects.create(name="Gone", manager=manager, seats=2, status="canceled")
    TeamSeat.objects.create(
        team=lapsed,
        subscriber=make_subscriber("gone@example.com", membership=None),
        claimed_at=team.created_at,
    )
    make_article(title="Six nations sign a river treaty")
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())
    assert [mail.rcpt_tos for mail in smtp_server.received()] == [["seated@example.com"]]
