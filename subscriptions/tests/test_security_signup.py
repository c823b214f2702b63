"""What a hostile review of signup found, each point with the test that proves it closed.

1. A checkout gave a session for an address nobody had proved; readers can
   now sign out everywhere.
2. Signup told members from strangers, and wrote to Stripe for each probe.
3. Tokens in URLs reached access logs and Referer headers.
4. A name typed for someone else's address was printed in their email.
5. The success page called Stripe for anyone, and failed without billing.
6. The success page showed the reader's name and address to anyone with its URL.
Plus: one free trial per reader.
"""

import datetime
import io
import logging
import re
from types import SimpleNamespace

import pytest
from django.test import Client

from subscriptions import signin, unsubscribe
from subscriptions.models import Membership, Subscriber
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from subscriptions.tests.signup_flow import (
    SIGN_IN_LINK,
    ask_to_subscribe,
    link_in,
    sign_up,
)

pytestmark = pytest.mark.django_db

FORM = {"email": "ada@example.com", "name": "Ada", "time_zone": "Europe/Paris"}
VICTIM = {"email": "victim@example.com", "name": "", "time_zone": "Europe/Paris"}
CHECKOUT_SESSION_KEY = "checkout_session_id"  # where the browser keeps its checkout's id


def without_csrf_tokens(content: bytes) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", content.decode())


def signed_in_browser(reader: Subscriber, mailoutbox, capture) -> Client:
    """A browser signed in the only way there is: by the emailed link."""
    browser = Client()
    with capture(execute=True):
        browser.post("/signin/", {"email": reader.email})
    link = link_in(mailoutbox[-1], SIGN_IN_LINK)
    assert browser.post(link).status_code == 303
    return browser


def reach_checkout(client: Client, form: dict, mailoutbox, capture):
    """Whatever signup asks of its owner (the form, then any emailed link), up to Checkout."""
    answer = ask_to_subscribe(client, form, capture)
    if answer.status_code == 200 and mailoutbox:
        data = {"name": form.get("name", ""), "time_zone": form["time_zone"]}
        with capture(execute=True):
            answer = client.post(link_in(mailoutbox[-1]), data)
    assert answer.status_code == 303
    return answer


def complete_every_checkout(fake_stripe, browser: Client, capture) -> None:
    """Play Stripe: every Checkout Session started so far is paid, and its browser returns."""
    for session_id, session in list(fake_stripe.sessions.items()):
        if session["status"] == "open":
            fake_stripe.complete_session(
                session_id, stripe_objects.subscription("trialing", customer=session["customer"])
            )
        with capture(execute=True):
            browser.get("/subscribe/success/", {"session_id": session_id})


# --- 1. Pre-account hijack, and signing out everywhere --------------------------------


@pytest.mark.faults
def test_a_stranger_who_signs_up_an_unused_address_and_pays_gets_no_session(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    stranger = Client()
    answer = ask_to_subscribe(stranger, VICTIM, capture)
    if answer.status_code in (302, 303):
        stranger.get(answer["Location"])  # to Checkout, where the stranger pays
    complete_every_checkout(fake_stripe, stranger, capture)

    # Later the owner signs in by link, and out again.
    owner = Subscriber.objects.filter(email="victim@example.com").first()
    if owner is not None:
        signed_in_browser(owner, mailoutbox, capture).post("/signout/")

    for page in ("/account/", "/account/data/"):
        assert stranger.get(page).status_code == 302, page
    assert SESSION_KEY not in stranger.session


def test_the_success_page_never_signs_a_browser_in(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    reach_checkout(client, FORM, mailoutbox, capture)
    session_id = next(iter(fake_stripe.sessions))
    # This browser started the checkout, then signed out (a shared computer).
    client.post("/signout/")
    session = client.session
    session[CHECKOUT_SESSION_KEY] = session_id
    session.save()

    complete_every_checkout(fake_stripe, client, capture)

    assert SESSION_KEY not in client.session
    assert client.get("/account/").status_code == 302


def test_sign_out_everywhere_ends_every_session_of_the_reader(
    mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    reader = make_subscriber("ada@example.com")
    other_reader = make_subscriber("grace@example.com")
    laptop = signed_in_browser(reader, mailoutbox, capture)
    phone = signed_in_browser(reader, mailoutbox, capture)
    theirs = signed_in_browser(other_reader, mailoutbox, capture)
    assert 'action="/account/sign-out-everywhere/"' in laptop.get("/account/").content.decode()

    answer = laptop.post("/account/sign-out-everywhere/")

    assert answer.status_code == 200
    assert "signed out on every device" in answer.content.decode()
    assert answer["Cache-Control"] == "no-store"
    assert laptop.get("/account/").status_code == 302
    assert phone.get("/account/").status_code == 302
    assert theirs.get("/account/").status_code == 200
    # A new link signs in again.
    assert signed_in_browser(reader, mailoutbox, capture).get("/account/").status_code == 200


def test_sessions_made_before_a_sign_out_everywhere_are_refused():
    reader = make_subscriber("ada@example.com")
    Subscriber.objects.filter(pk=reader.pk).update(session_epoch=1)
    browser = Client()
    session = browser.session
    session[SESSION_KEY] = reader.pk  # a session of before: no epoch, or an older one
    session.save()

    assert browser.get("/account/").status_code == 302


# --- 2. Signup tells nobody who is a member, and writes nothing for a probe -------------


@pytest.mark.faults
def test_signup_answers_a_member_and_a_stranger_alike(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    make_stripe_member(Membership.Status.ACTIVE, email="grace@example.com")
    capture = django_capture_on_commit_callbacks

    member = ask_to_subscribe(Client(), {**FORM, "email": "grace@example.com"}, capture)
    stranger = ask_to_subscribe(Client(), {**FORM, "email": "new@example.com"}, capture)

    assert member.status_code == stranger.status_code == 200
    assert without_csrf_tokens(member.content) == without_csrf_tokens(stranger.content)
    assert "Check your inbox" in member.content.decode()
    # What differs goes only to each address's owner.
    to_member, to_stranger = mailoutbox
    assert to_member.to == ["grace@example.com"] and "/signin/" in to_member.body
    assert to_stranger.to == ["new@example.com"] and "/subscribe/continue/" in to_stranger.body


@pytest.mark.faults
def test_a_signup_probe_writes_nothing_at_stripe_or_in_the_database(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    ask_to_subscribe(Client(), FORM, django_capture_on_commit_callbacks)

    assert len(fake_stripe.mock.calls) == 0
    assert Subscriber.objects.count() == 0
    assert Membership.objects.count() == 0


def test_the_emailed_link_signs_the_owner_in_and_only_then_reaches_stripe(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ask_to_subscribe(client, FORM, capture)
    link = link_in(mailoutbox[-1])
    assert "Ada" not in mailoutbox[-1].body  # a name nobody confirmed is not printed

    # Opening the link (a mail scanner does) writes nothing.
    page = Client().get(link, follow=True)
    assert page.status_code == 200
    assert "Start my free 14-day trial" in page.content.decode()
    assert Subscriber.objects.count() == 0 and len(fake_stripe.mock.calls) == 0

    with capture(execute=True):
        answer = client.post(link, {"name": "Ada", "time_zone": "Europe/Paris"})

    assert answer.status_code == 303
    assert answer["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    reader = Subscriber.objects.get()
    assert (reader.email, reader.name, reader.time_zone) == (
        "ada@example.com",
        "Ada",
        "Europe/Paris",
    )
    assert client.session[SESSION_KEY] == reader.pk  # proved by the link, so signed in
    assert len(fake_stripe.requests("POST", "/v1/customers")) == 1
    assert len(fake_stripe.requests("POST", "/v1/checkout/sessions")) == 1


@pytest.mark.faults
def test_the_emailed_link_works_once(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    sign_up(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
    link = link_in(mailoutbox[-1])

    someone = Client()
    again = someone.post(link, {"name": "Eve", "time_zone": "Europe/Paris"})

    assert again.status_code == 400
    assert "no longer works" in again.content.decode()
    assert SESSION_KEY not in someone.session
    assert Subscriber.objects.get().name == "Ada"
    assert len(fake_stripe.requests("POST", "/v1/customers")) == 1


# --- 3. Secrets in URLs stay out of logs and Referer headers ------------------------------

SECRET_URLS = [
    "/signin/eyJzIjoxLCJ2IjoiIn0:1vRxyz:abcdefSIGNATURE/",
    "/unsubscribe/12-Zm9vYmFyU0lHTkFUVVJF/",
    "/subscribe/continue/eyJlIjoiYWRhQGV4YW1wbGUuY29tIn0:1vRxyz:SIG/",
    "/subscribe/success/?session_id=cs_test_a1B2c3SECRET",
    # A team's manager link (it opens the team's page), a seat's emailed
    # confirmation and the team's invite link.
    "/teams/manage/eyJ0IjozfQ:1vRxyz:SIGNATURE/",
    "/teams/seat/eyJ0IjozLCJlIjoiYSJ9:1vRxyz:SIGNATURE/",
    "/teams/join/3-Zm9vYmFyU0lHTkFUVVJF/",
    "/articles/a-story/?token=eyJyIjo3fQ:1vRxyz:SIGNATURE",
]


def gunicorn_access_line(url: str, capsys) -> str:
    """The line gunicorn's access log, as config/gunicorn_conf.py sets it up, writes for `url`."""
    import gunicorn.config

    from config import gunicorn_conf

    cfg = gunicorn.config.Config()
    for name, value in vars(gunicorn_conf).items():
        if name in cfg.settings:
            cfg.set(name, value)
    access_logger = logging.getLogger("gunicorn.access")
    before = list(access_logger.handlers), list(access_logger.filters)
    try:
        logger = cfg.logger_class(cfg)
        path, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": url,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.9",
            "HTTP_REFERER": f"https://briefing.example{url}",
        }
        response = SimpleNamespace(status="200 OK", sent=512, headers=[])
        request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
        logger.access(response, request, environ, datetime.timedelta(milliseconds=3))
    finally:
        access_logger.handlers[:], access_logger.filters[:] = before
    return capsys.readouterr().out


@pytest.mark.parametrize("url", SECRET_URLS)
def test_the_gunicorn_access_log_redacts_tokens(url, capsys):
    line = gunicorn_access_line(url, capsys)

    assert '"GET /' in line and "203.0.113.9" in line  # the line is still written
    assert "[redacted]" in line
    for secret in ("SIGNATURE", "SECRET", "SIG/", "Zm9vYmFy", "eyJ"):
        assert secret not in line, line


def test_an_address_change_link_and_both_addresses_in_it_stay_out_of_the_logs(settings, capsys):
    # The link emailed to the new address: its token holds the old and the new one.
    claim = signin.EmailChangeClaim(
        subscriber_id=7, old_email="ada@example.com", new_email="ada.new@example.org"
    )
    url = signin.email_change_url(claim).removeprefix(settings.SITE_URL)
    token = url.removeprefix("/account/address/").removesuffix("/")
    assert signin.read_email_change_token(token) == claim

    access = gunicorn_access_line(url, capsys)
    [handler] = [h for h in logging.getLogger("django").handlers if h.filters]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    try:
        logging.getLogger("django.request").warning("Not Found: %s", url)
    finally:
        handler.setStream(stream)

    for line in (access, buffer.getvalue()):
        assert "/account/address/[redacted]/" in line
        assert token not in line and token[-12:] not in line, line


def test_django_log_records_are_redacted_by_the_configured_handler():
    # The handler settings.LOGGING configured, with its filters, writing to a buffer.
    [handler] = [h for h in logging.getLogger("django").handlers if h.filters]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    try:
        logging.getLogger("django.request").warning("Bad Request: %s", SECRET_URLS[0])
        logging.getLogger("django.server").info(
            '"%s" %s %s', f"GET {SECRET_URLS[3]} HTTP/1.1", 200, 9
        )
    finally:
        handler.setStream(stream)

    written = buffer.getvalue()
    assert "Bad Request: /signin/[redacted]/" in written
    assert "/subscribe/success/?session_id=[redacted]" in written
    assert "SIGNATURE" not in written and "SECRET" not in written


def test_gunicorn_runs_with_the_redacting_config_in_compose_and_the_dockerfile():
    from config.tests.test_deployment_files import ROOT

    assert "-c python:config.gunicorn_conf" in (ROOT / "docker-compose.yml").read_text()
    assert '"python:config.gunicorn_conf"' in (ROOT / "Dockerfile").read_text()


def token_pages(mailoutbox, capture, fake_stripe) -> dict[str, tuple[Client, str]]:
    reader = make_subscriber("grace@example.com")
    own = Client()
    reach_checkout(own, FORM, mailoutbox, capture)
    session_id = next(iter(fake_stripe.sessions))
    pages = {
        "sign-in link": (
            Client(),
            signin.sign_in_url(reader).removeprefix("http://127.0.0.1:8000"),
        ),
        "sign-in link, expired or used": (Client(), "/signin/not-a-token/"),
        "unsubscribe link": (Client(), unsubscribe.unsubscribe_url(reader)),
        "unsubscribe link, bad": (Client(), "/unsubscribe/1-bad/"),
        "success page, own browser": (own, f"/subscribe/success/?session_id={session_id}"),
        "success page, another browser": (Client(), f"/subscribe/success/?session_id={session_id}"),
    }
    continue_links = [m for m in mailoutbox if "/subscribe/continue/" in m.body]
    if continue_links:
        pages["continue link"] = (Client(), link_in(continue_links[0]))
    return pages


def test_pages_with_a_secret_in_their_url_send_no_referrer(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    pages = token_pages(mailoutbox, django_capture_on_commit_callbacks, fake_stripe)
    for name, (browser, url) in pages.items():
        response = browser.get(url)
        assert response.status_code < 500, name
        assert response["Referrer-Policy"] == "no-referrer", name
    assert "continue link" in pages
    assert Client().get("/")["Referrer-Policy"] == "same-origin"  # the rest of the site


def test_an_emailed_links_button_is_on_a_page_without_the_token_in_its_url(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    """Under no-referrer a browser posts a form with "Origin: null", which CSRF refuses;
    so the link moves its token into the session and the button lives on a plain URL."""
    capture = django_capture_on_commit_callbacks
    make_subscriber("grace@example.com")
    with capture(execute=True):
        client.post("/signin/", {"email": "grace@example.com"})
    ask_to_subscribe(client, FORM, capture)
    sign_in_link, signup_link = link_in(mailoutbox[0], SIGN_IN_LINK), link_in(mailoutbox[1])

    for link, page in ((sign_in_link, "/signin/confirm/"), (signup_link, "/subscribe/continue/")):
        opened = client.get(link)
        assert (opened.status_code, opened["Location"]) == (302, page)
        assert opened["Referrer-Policy"] == "no-referrer"
        button = client.get(page)
        assert button.status_code == 200
        assert button["Referrer-Policy"] == "same-origin"
        assert link.split("/")[-2] not in button.content.decode()

    with capture(execute=True):
        checkout = client.post("/subscribe/continue/", {"name": "Ada", "time_zone": "UTC"})
    assert checkout["Location"].startswith("https://checkout.stripe.com/")
    assert client.post("/signin/confirm/")["Location"] == "/account/"
    assert client.get("/account/").content.decode().count("grace@example.com") == 1


def test_sign_in_links_live_for_fifteen_minutes_by_default(
    client, clock, mailoutbox, django_capture_on_commit_callbacks
):
    make_subscriber("ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/signin/", {"email": "ada@example.com"})
    [mail] = mailoutbox
    assert "works once, for 15 minutes" in mail.body

    clock.shift(datetime.timedelta(minutes=16))

    assert client.post(link_in(mail, SIGN_IN_LINK)).status_code == 400


def test_the_sign_in_link_life_is_a_setting(
    client, clock, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SIGN_IN_LINK_MINUTES = 5
    make_subscriber("ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/signin/", {"email": "ada@example.com"})
    assert "works once, for 5 minutes" in mailoutbox[0].body
    clock.shift(datetime.timedelta(minutes=6))
    assert client.post(link_in(mailoutbox[0], SIGN_IN_LINK)).status_code == 400


# --- 4. Attacker text in official emails -----------------------------------------------------

PHISHING_NAME = "Billing Team says update your card now"


def all_text(mail) -> str:
    return mail.body + "".join(content for content, _ in mail.alternatives)


@pytest.mark.faults
def test_a_name_typed_for_someone_elses_address_never_reaches_their_email(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    make_stripe_member(Membership.Status.ACTIVE, email="grace@example.com", name="Grace")
    attacker = Client()
    for email in ("victim@example.com", "grace@example.com"):
        ask_to_subscribe(attacker, {**VICTIM, "email": email, "name": PHISHING_NAME}, capture)
        with capture(execute=True):
            attacker.post("/signin/", {"email": email})

    assert mailoutbox
    for mail in mailoutbox:
        assert "Billing Team" not in all_text(mail), mail.subject
    assert not Subscriber.objects.filter(name=PHISHING_NAME).exists()


@pytest.mark.faults
@pytest.mark.parametrize(
    "name",
    [
        "Update your card at https://evil.example/pay",
        "see www.evil.example",
        "Ada\u202eelpmaxe.live",  # a right-to-left override
        "mail billing@evil.example",
        "A" * 61,
    ],
)
def test_names_that_could_carry_a_link_or_run_long_are_refused_kindly(
    client, fake_stripe, mailoutbox, name
):
    answer = client.post("/subscribe/", {**FORM, "name": name})

    assert answer.status_code == 400
    assert "just your name" in answer.content.decode() or "at most 60" in answer.content.decode()
    assert len(mailoutbox) == 0 and Subscriber.objects.count() == 0


def test_emails_greet_by_name_only_once_the_owner_signed_in_or_paid(
    mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    unconfirmed = make_subscriber("eve@example.com", membership=None, name="Evelyn")
    legacy = make_stripe_member(email="old@example.com", name="visit www.evil.example now")
    for reader in (unconfirmed, legacy):
        with capture(execute=True):
            Client().post("/signin/", {"email": reader.email})
    first, second = mailoutbox
    assert "Evelyn" not in all_text(first)
    assert "evil" not in all_text(second)  # stored before names were checked: never printed

    # Once the owner signed in by link, their name is theirs.
    Client().post(link_in(first, SIGN_IN_LINK))
    with capture(execute=True):
        Client().post("/signin/", {"email": "eve@example.com"})
    assert "Hello Evelyn," in mailoutbox[-1].body


# --- 5. The success page: no Stripe call for strangers, limited, and calm without billing ---


@pytest.mark.faults
def test_the_success_page_calls_stripe_only_for_the_browser_that_started_the_checkout(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    reach_checkout(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
    real_session_id = next(iter(fake_stripe.sessions))
    calls_before = len(fake_stripe.mock.calls)

    stranger = Client()
    answers = [
        stranger.get("/subscribe/success/", {"session_id": f"cs_x{number:04d}"}).status_code
        for number in range(50)
    ]
    answers.append(stranger.get("/subscribe/success/", {"session_id": real_session_id}).status_code)

    assert len(fake_stripe.mock.calls) == calls_before
    assert set(answers) == {200}  # a calm page that shows nothing
    assert client.get("/subscribe/success/", {"session_id": real_session_id}).status_code == 200
    assert len(fake_stripe.mock.calls) == calls_before + 1  # its own browser: one call


@pytest.mark.faults
def test_the_success_page_is_rate_limited(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    reach_checkout(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
    session_id = next(iter(fake_stripe.sessions))

    answers = [
        client.get("/subscribe/success/", {"session_id": session_id}).status_code for _ in range(40)
    ]

    assert answers[0] == 200 and answers[-1] == 429
    assert fake_stripe.count("GET", r"/v1/checkout/sessions/\w+") == answers.count(200)


def test_the_success_page_without_billing_answers_503_kindly(client, settings):
    settings.STRIPE_SECRET_KEY = None
    settings.DEBUG = False
    session = client.session
    session[CHECKOUT_SESSION_KEY] = "cs_test_started_before_billing_was_turned_off"
    session.save()

    response = client.get(
        "/subscribe/success/", {"session_id": "cs_test_started_before_billing_was_turned_off"}
    )

    assert response.status_code == 503
    assert "Nothing was charged" in response.content.decode()


@pytest.mark.faults
def test_stripe_down_on_the_success_page_answers_502_kindly(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    reach_checkout(client, FORM, mailoutbox, django_capture_on_commit_callbacks)
    session_id = next(iter(fake_stripe.sessions))
    fake_stripe.fail_next = 10  # more than the SDK's retries

    response = client.get("/subscribe/success/", {"session_id": session_id})

    assert response.status_code == 502
    assert "reload this page" in response.content.decode()


# --- 6. The success page shows who paid only to the browser that paid ------------------------


def test_the_success_page_shows_name_and_address_only_to_the_browser_that_checked_out(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    reach_checkout(client, {**FORM, "name": "Ada Lovelace"}, mailoutbox, capture)
    complete_every_checkout(fake_stripe, client, capture)
    url = f"/subscribe/success/?session_id={next(iter(fake_stripe.sessions))}"

    own = client.get(url).content.decode()
    other = Client().get(url).content.decode()

    assert "Ada Lovelace" in own and "ada@example.com" in own
    assert "Ada Lovelace" not in other and "ada@example.com" not in other
    assert "the browser where the checkout started" in other


# --- One free trial per reader -----------------------------------------------------------------


def test_a_returning_reader_gets_no_second_trial_and_is_told_so(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    make_stripe_member(
        Membership.Status.CANCELED,
        email="ada@example.com",
        customer_id="cus_returning",
        subscription_id="sub_old_with_trial",
    )

    reach_checkout(client, FORM, mailoutbox, django_capture_on_commit_callbacks)

    assert "no free trial" in mailoutbox[0].body.lower()
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert "subscription_data[trial_period_days]" not in session
    assert session["customer"] == "cus_returning"


def test_the_continue_page_says_no_trial_applies_to_a_returning_reader(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    make_stripe_member(Membership.Status.CANCELED, email="ada@example.com")
    ask_to_subscribe(Client(), FORM, django_capture_on_commit_callbacks)

    page = Client().get(link_in(mailoutbox[0]), follow=True).content.decode()

    assert "no free trial" in page.lower()
    assert "Start my free 14-day trial" not in page


def test_stripe_knowing_an_earlier_subscription_means_no_trial(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    # We lost track of it (a membership with a customer, no subscription), Stripe did not.
    make_stripe_member(
        Membership.Status.INCOMPLETE,
        email="ada@example.com",
        customer_id="cus_seen",
        subscription_id=None,
    )
    fake_stripe.set_subscription(
        stripe_objects.subscription("canceled", id="sub_earlier", customer="cus_seen")
    )

    reach_checkout(client, FORM, mailoutbox, django_capture_on_commit_callbacks)

    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert "subscription_data[trial_period_days]" not in session


def test_with_one_trial_per_reader_off_a_returning_reader_gets_the_trial(
    client, settings, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    settings.ONE_TRIAL_PER_READER = False
    make_stripe_member(Membership.Status.CANCELED, email="ada@example.com")

    reach_checkout(client, FORM, mailoutbox, django_capture_on_commit_callbacks)

    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["subscription_data[trial_period_days]"] == "14"
