"""Bogus addresses stop at the form: typos get a suggestion, mail-less domains are refused."""

import dns.resolver
import pytest

from subscriptions.forms import SignInForm, SignupForm
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def test_a_domain_typo_is_sent_back_with_a_suggestion(client):
    response = client.post("/subscribe/", {"email": "typo@gmial.con", "name": ""})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Did you mean typo@gmail.com? You typed gmial.con." in page
    assert 'name="use_email" value="typo@gmail.com"' in page
    # Focus goes to the address, which names its error.
    assert 'aria-describedby="id_email_error" autofocus' in page
    assert 'id="id_email_error"' in page


def test_an_address_edited_after_the_question_wins_over_the_suggestion():
    # Enter in the edited field presses the form's first button, "Use …".
    form = SignupForm(
        {"email": "ada@example.org", "keep_email": "ada@gmial.con", "use_email": "ada@gmail.com"}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["email"] == "ada@example.org"


def test_use_the_suggestion_or_keep_the_address_as_typed():
    used = SignupForm(
        {"email": "typo@gmial.con", "keep_email": "typo@gmial.con", "use_email": "typo@gmail.com"}
    )
    assert used.is_valid(), used.errors
    assert used.cleaned_data["email"] == "typo@gmail.com"

    kept = SignupForm({"email": "ada@gmai.com", "keep_email": "ada@gmai.com"})
    assert kept.is_valid(), kept.errors
    assert kept.cleaned_data["email"] == "ada@gmai.com"

    # Keeping is for the address that was questioned, not another one.
    other = SignupForm({"email": "ada@hotmial.com", "keep_email": "ada@gmai.com"})
    assert not other.is_valid()


@pytest.mark.parametrize("address", ["someone@localhost", "x@printer.local", "x@site.test"])
def test_domains_that_cannot_be_on_the_internet_are_refused(client, address):
    response = client.post("/subscribe/", {"email": address, "name": ""})

    assert response.status_code == 400
    assert "@-sign" in response.content.decode()
    assert not SignInForm({"email": address}).is_valid()


def test_a_common_address_passes():
    assert SignupForm({"email": "ada@gmail.com"}).is_valid()


class FakeAnswer(list):
    rrset = None


def test_with_the_dns_check_on_a_domain_without_mail_is_refused(settings, monkeypatch):
    settings.EMAIL_CHECK_DELIVERABILITY = True

    # No DNS in tests: a resolver that answers "no such domain" for every name,
    # as a real one does for a domain nobody registered.
    def nxdomain(self, name, *args, **kwargs):
        raise dns.resolver.NXDOMAIN

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", nxdomain)

    form = SignupForm({"email": "ada@no-mail-here.example.org"})

    # The lookup is the view's to ask for, after its rate limits.
    assert form.is_valid()
    assert not form.check_deliverable()
    assert "not a domain that receives email" in str(form.errors["email"])


def test_with_the_dns_check_on_a_dns_that_does_not_answer_refuses_nobody(settings, monkeypatch):
    settings.EMAIL_CHECK_DELIVERABILITY = True

    def timeout(self, name, *args, **kwargs):
        raise dns.exception.Timeout

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", timeout)

    form = SignupForm({"email": "ada@example.org"})
    assert form.is_valid()
    assert form.check_deliverable()
