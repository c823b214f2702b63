"""The links of an editor's [Test] email work: they open a page that says it is a test."""

import datetime
import re

import pytest

from newsletter.tests.factories import make_article, make_staff
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def test_email(client, smtp_server):
    client.force_login(make_staff("editor", first_name="Eddie"))
    make_article(title="Alpha", published_ago=datetime.timedelta(hours=2))
    response = client.get("/admin/newsletter/edition/next/")
    edition_url = response.url.removesuffix("desk/")
    client.post(f"{edition_url}test/", {"reader": "paying"})
    [mail] = smtp_server.received()
    client.logout()
    return mail


def link(mail, path: str) -> str:
    """The path of the email's /<path>/<token>/ link."""
    found = re.search(rf"https?://[^/\s]+(/{path}/\S+/)", mail.text)
    assert found is not None, mail.text
    return found.group(1)


@pytest.mark.parametrize("path", ["unsubscribe", "preferences"])
def test_a_test_emails_link_says_it_is_a_test(client, test_email, path):
    url = link(test_email, path)

    response = client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert "This link is from a test email" in page
    assert "not valid" not in page


def test_one_click_unsubscribe_of_a_test_email_changes_nothing(client, test_email):
    reader = make_subscriber(email="editor@example.com")
    header = test_email.message["List-Unsubscribe"]
    found = re.search(r"<https?://[^/]+(/unsubscribe/[^>]+)>", header)
    assert found is not None, header
    url = found.group(1)

    response = client.post(url, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert "This link is from a test email" in response.content.decode()
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


def test_an_altered_test_link_is_still_refused(client, test_email):
    url = link(test_email, "unsubscribe")

    response = client.get(url[:-3] + "abc/")

    assert response.status_code == 400
