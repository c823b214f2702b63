"""Importing a list: readers from a CSV (Substack, Ghost, plain) and subscriptions from Stripe."""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command

from subscriptions.actions.imports import do_import_readers, do_import_stripe
from subscriptions.forms import SignupForm
from subscriptions.models import Membership, ReaderEmail, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

SUBSTACK = """email,active_subscription,expiry,plan,email_disabled,created_at
paid@example.com,true,2027-06-30T00:00:00.000Z,yearly,false,2024-01-02T10:00:00.000Z
free@example.com,false,,,false,2024-02-03T10:00:00.000Z
Quiet@Example.com,false,,,true,2024-02-03T10:00:00.000Z
not-an-address,false,,,false,2024-02-03T10:00:00.000Z
paid@example.com,true,2027-06-30T00:00:00.000Z,yearly,false,2024-01-02T10:00:00.000Z
"""

GHOST = (
    "id,email,name,note,subscribed_to_emails,complimentary_plan,"
    "stripe_customer_id,created_at,deleted_at,labels,tiers\n"
    """1,ghost@example.com,Grace Hopper,,true,false,,2024-01-01T00:00:00.000Z,,,
2,comp@example.com,Comp Reader,,true,true,,2024-01-01T00:00:00.000Z,,,
3,gone@example.com,Gone,,true,false,,2024-01-01T00:00:00.000Z,2024-05-01T00:00:00.000Z,,
"""
)

PLAIN = """email,name,time_zone
tokyo@example.com,Kenji,Asia/Tokyo
nowhere@example.com,Lost,Mars/Olympus_Mons
spam@example.com,visit www.spam.example,UTC
"""


def member(email: str) -> Membership:
    return Membership.objects.get(subscriber__email__iexact=email)


def test_substack_export_paid_time_left_is_complimentary_until_it_ends():
    report = do_import_readers(SUBSTACK)

    assert report.format == "substack"
    assert sorted(e.lower() for e in report.created) == [
        "free@example.com",
        "paid@example.com",
        "quiet@example.com",
    ]
    assert [where for where, _ in report.rejected] == [5, 6]
    assert "already in this file" in report.rejected[1][1]
    paid = member("paid@example.com")
    assert paid.complimentary and paid.complimentary_until == datetime.datetime(
        2027, 6, 30, tzinfo=datetime.UTC
    )
    assert paid.subscriber.is_entitled
    assert member("free@example.com").complimentary_until is None
    assert Subscriber.objects.get(email__iexact="quiet@example.com").email_status == "unsubscribed"
    assert ReaderEmail.objects.count() == 0  # nobody is emailed


def test_ghost_export_skips_deleted_members_and_reads_comps_and_opt_outs():
    report = do_import_readers(GHOST, import_as="trial")

    assert report.format == "ghost"
    assert sorted(report.created) == ["comp@example.com", "ghost@example.com"]
    assert Subscriber.objects.get(email="ghost@example.com").name == "Grace Hopper"
    # A trial's worth for the ordinary member; Ghost's comp stays comp.
    assert member("ghost@example.com").complimentary_until == datetime.datetime(
        2026, 12, 17, 11, tzinfo=datetime.UTC
    )
    assert member("comp@example.com").complimentary_until is None
    assert not Subscriber.objects.filter(email="gone@example.com").exists()


def test_plain_csv_rejects_bad_zones_and_keeps_names_out_of_emails():
    report = do_import_readers(PLAIN)

    assert report.format == "plain"
    assert Subscriber.objects.get(email="tokyo@example.com").time_zone == "Asia/Tokyo"
    [(row, reason)] = report.rejected
    assert row == 3 and "not a known time zone" in reason
    assert Subscriber.objects.get(email="spam@example.com").name == ""


# Addresses the signup form refuses, the first across a line break in its quoted cell.
UNSENDABLE = """email,name,time_zone
first@example.com,First,UTC
"ada
@example.com",Ada,UTC
a@b@example.com,Two Ats,UTC
bob @example.com,Space,UTC
carol@localhost,Local,UTC
last@example.com,Last,UTC
"""


def test_addresses_the_signup_form_refuses_are_reported_and_the_rest_imported(tmp_path):
    refused = ["ada\n@example.com", "a@b@example.com", "bob @example.com", "carol@localhost"]
    for address in refused:
        form = SignupForm({"email": address, "keep_email": address})
        assert not form.is_valid() and "email" in form.errors, address

    report = do_import_readers(UNSENDABLE)

    assert sorted(report.created) == ["first@example.com", "last@example.com"]
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "first@example.com",
        "last@example.com",
    ]
    # Each by its row (the header is row 1; a quoted line break stays in its row).
    assert [row for row, _ in report.rejected] == [3, 4, 5, 6]
    lines = report.lines()
    assert "  row 3: ada\\n@example.com: Enter a valid email address." in lines
    assert "  row 4: a@b@example.com: Enter a valid email address." in lines
    assert "  row 5: bob @example.com: Enter a valid email address." in lines
    assert any(line.startswith("  row 6: carol@localhost: ") for line in lines)
    assert all("\n" not in line for line in lines)  # one line each, as printed

    path = tmp_path / "list.csv"
    path.write_text(UNSENDABLE)
    out = io.StringIO()
    call_command("import_readers", str(path), "--dry-run", stdout=out)
    assert "Rejected 4." in out.getvalue()
    assert "  row 3: ada\\n@example.com: Enter a valid email address." in out.getvalue()


def test_importing_again_or_an_existing_reader_makes_no_duplicates():
    existing = make_subscriber("tokyo@example.com", time_zone="Europe/Paris")
    do_import_readers(PLAIN)
    again = do_import_readers(PLAIN)

    assert again.created == []
    assert sorted(again.skipped) == ["spam@example.com", "tokyo@example.com"]
    existing.refresh_from_db()
    assert existing.time_zone == "Europe/Paris"  # left as it was
    assert Subscriber.objects.filter(email__iexact="tokyo@example.com").count() == 1


def test_a_dry_run_reports_and_writes_nothing():
    report = do_import_readers(SUBSTACK, dry_run=True)
    assert len(report.created) == 3 and report.lines()[0].startswith("Would import 3")
    assert Subscriber.objects.count() == 0


def test_a_file_without_an_email_header_is_refused_whole(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("address,name\nada@example.com,Ada\n")
    with pytest.raises(CommandError, match="'email' column"):
        call_command("import_readers", str(path))
    assert Subscriber.objects.count() == 0


def test_the_command_prints_the_report(tmp_path, capsys):
    path = tmp_path / "ghost.csv"
    path.write_text(GHOST)
    call_command("import_readers", str(path), "--dry-run")
    out = capsys.readouterr().out
    assert "Would import 2 new reader(s) (ghost)." in out


# --- Stripe ----------------------------------------------------------------------------


def stripe_list(fake_stripe):
    """Three live subscriptions at Stripe and one ended; one on another price."""
    for number, status in enumerate(["active", "trialing", "past_due", "canceled"], start=1):
        sub = stripe_objects.subscription(
            status, id=f"sub_Import{number:020d}", customer=f"cus_Import{number:08d}"
        )
        fake_stripe.set_subscription(sub)
        fake_stripe.customers[sub["customer"]] = stripe_objects.load(
            "customer", id=sub["customer"], email=f"Member{number}@Example.com", name=f"M {number}"
        )
    other = stripe_objects.subscription("active", id="sub_Other0000000000000001", customer="cus_X")
    other["items"]["data"][0]["price"]["id"] = "price_monthly"
    fake_stripe.set_subscription(other)
    fake_stripe.customers["cus_X"] = stripe_objects.load("customer", id="cus_X", email="x@e.com")


def test_import_stripe_creates_readers_once_and_emails_nobody(fake_stripe, smtp_server):
    stripe_list(fake_stripe)
    make_subscriber("member2@example.com", membership=None)  # already a reader, no membership

    first = do_import_stripe()
    second = do_import_stripe()

    assert sorted(e.lower() for e in first.created) == [f"member{n}@example.com" for n in (1, 2, 3)]
    assert second.created == [] and len(second.updated) == 3
    assert Subscriber.objects.filter(email__iexact="member2@example.com").count() == 1
    assert member("member1@example.com").status == "active"
    assert member("member2@example.com").status == "trialing"
    assert member("member1@example.com").stripe_customer_id == "cus_Import00000001"
    assert not Subscriber.objects.filter(email="x@e.com").exists()  # another price
    assert smtp_server.received() == []
    [listing, *_] = fake_stripe.requests("GET", "/v1/subscriptions")
    assert listing["price"] == "price_1SbAnnual46usd"


def test_import_stripe_all_prices_dry_run_writes_nothing(fake_stripe, capsys):
    stripe_list(fake_stripe)
    call_command("import_stripe", "--all-prices", "--dry-run")
    out = capsys.readouterr().out
    assert "Would import 4 new reader(s)" in out and "would import x@e.com" in out
    assert Subscriber.objects.count() == 0


def test_import_stripe_refuses_a_reader_who_follows_another_customer(fake_stripe):
    stripe_list(fake_stripe)
    make_subscriber(
        "member1@example.com",
        membership="active",
        membership_fields={
            "stripe_customer_id": "cus_Elsewhere",
            "stripe_subscription_id": "sub_E",
        },
    )
    report = do_import_stripe()
    assert (
        "sub_Import00000000000000000001",
        "Member1@example.com already has Stripe customer cus_Elsewhere",
    ) in report.rejected
    assert member("member1@example.com").stripe_subscription_id == "sub_E"


def test_import_stripe_leaves_a_customers_second_live_subscription_alone(fake_stripe):
    stripe_list(fake_stripe)
    do_import_stripe()
    second = stripe_objects.subscription(
        "trialing", id="sub_Import99999999999999999999", customer="cus_Import00000001"
    )
    fake_stripe.set_subscription(second)

    report = do_import_stripe()

    assert (
        "sub_Import99999999999999999999",
        "Member1@example.com already has sub_Import00000000000000000001",
    ) in report.rejected
    assert fake_stripe.requests("DELETE", "/v1/subscriptions/sub_Import99999999999999999999") == []
    assert member("member1@example.com").stripe_subscription_id == "sub_Import00000000000000000001"
