"""Staff with the billing permission import and export readers from the admin."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from subscriptions.models import Membership, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

PLAIN = b"email,name,time_zone\nada@example.com,Ada,Europe/London\nbad,,UTC\n"


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("staff", password="x", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, data: bytes, **fields):
    form = {
        "file": SimpleUploadedFile("list.csv", data, "text/csv"),
        "import_as": "complimentary",
        **fields,
    }
    return client.post("/admin/subscriptions/subscriber/import-csv/", form, follow=True)


def test_import_csv_dry_run_then_for_real_with_the_report():
    client = staff("view_subscriber", "view_membership", "change_membership")
    assert "Import readers (CSV)" in client.get("/admin/subscriptions/subscriber/").content.decode()

    dry = upload(client, PLAIN, dry_run="on").content.decode()
    assert "Would import 1 new reader(s) (plain)." in dry
    assert Subscriber.objects.count() == 0

    done = upload(client, PLAIN).content.decode()
    assert "Imported 1 new reader(s) (plain)." in done
    assert "row 3: bad:" in done
    assert Membership.objects.get(subscriber__email="ada@example.com").complimentary


def test_the_admin_import_refuses_what_the_forms_refuse_and_reports_every_row():
    client = staff("view_subscriber", "change_membership")
    bad = "".join(f"bad{n}@b@example.com,,UTC\n" for n in range(60))
    data = f'email,name,time_zone\nada@example.com,Ada,UTC\n"eve\n@example.com",,UTC\n{bad}'

    page = upload(client, data.encode()).content.decode()

    assert "Imported 1 new reader(s) (plain)." in page
    assert "row 3: eve\\n@example.com: Enter a valid email address." in page
    assert "row 4: bad0@b@example.com: Enter a valid email address." in page
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ada@example.com"]
    # More than one page of messages: where to find the rest is said.
    assert "more line(s): manage.py import_readers FILE --dry-run lists every rejected row" in page


def test_a_file_of_another_format_is_refused_on_the_form():
    client = staff("view_subscriber", "change_membership")
    page = upload(client, b"address\nada@example.com\n").content.decode()
    assert "&#x27;email&#x27; column" in page
    assert Subscriber.objects.count() == 0


def test_import_from_stripe_from_the_admin(fake_stripe):
    sub = fake_stripe.set_subscription(stripe_objects.subscription("active"))
    client = staff("view_subscriber", "change_membership")
    page = client.post(
        "/admin/subscriptions/subscriber/import-stripe/", {"dry_run": ""}, follow=True
    ).content.decode()
    assert "Imported 1 new reader(s) (Stripe)." in page
    assert Membership.objects.get().stripe_subscription_id == sub["id"]


def test_without_the_billing_permission_no_import_and_no_export(fake_stripe):
    client = staff("view_subscriber")
    page = client.get("/admin/subscriptions/subscriber/").content.decode()
    assert "Import readers" not in page and "Export readers" not in page
    assert client.get("/admin/subscriptions/subscriber/import-csv/").status_code == 403
    assert client.post("/admin/subscriptions/subscriber/import-stripe/").status_code == 403
    assert client.get("/admin/subscriptions/subscriber/export-csv/").status_code == 403
    assert len(fake_stripe.mock.calls) == 0


def test_export_every_reader_as_csv_safe_for_spreadsheets():
    make_subscriber("ada@example.com", name="Ada", time_zone="Asia/Tokyo")
    make_subscriber("eve@example.com", name="=HYPERLINK(1)", membership=None)
    client = staff("view_subscriber", "view_membership")

    response = client.get("/admin/subscriptions/subscriber/export-csv/")

    assert response["Content-Disposition"] == 'attachment; filename="readers.csv"'
    lines = b"".join(response.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert lines[0].startswith("email,name,time_zone,email_status,membership_status")
    assert lines[1].startswith("ada@example.com,Ada,Asia/Tokyo,active,active")
    assert lines[2].startswith("eve@example.com,'=HYPERLINK(1),")
    assert len(lines) == 3
