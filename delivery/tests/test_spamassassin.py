"""Every email the project sends scores 0.0 with SpamAssassin (local rules, `spamassassin -L -t`).

The only rules allowed to fire are the ones about the relay a test message
never passed through (NO_RECEIVED, NO_RELAYS): a real message gets its
Received headers on the way. SpamAssassin is installed from Debian when
missing (`make spamassassin` does the same); the emails are the real ones,
as the SMTP server received them.
"""

import datetime
import os
import re
import shutil
import subprocess

import pytest
from django.core import mail as django_mail
from django.utils import timezone

from delivery import by_hand
from delivery.deliverability import health, suppression
from delivery.models import BounceEvent, Delivery
from newsletter.tests.factories import built_edition, make_article, make_staff
from subscriptions import emails as reader_emails
from subscriptions.models import Membership, ReaderEmail
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

ALLOWED = {"NO_RECEIVED", "NO_RELAYS"}


def ensure_spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "spamassassin"],  # noqa: S607
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("spamassassin")
    assert found, "spamassassin could not be installed"
    return found


SEPARATOR = "From spamassassin-test@localhost Mon Jan  1 00:00:00 2024"


def scores(raws: list[str]) -> dict[str, tuple[float, set[str], str]]:
    """SpamAssassin's score of each message, the rules that fired and its report, by Message-ID.

    One spamassassin process reads them all as an mbox: starting it (compiling
    its rules) costs seconds, scoring a message milliseconds.
    """
    lines = []
    for raw in raws:
        # mbox: a body line starting with "From " would start a message.
        body = re.sub(r"^(>*From )", r">\1", raw.replace("\r\n", "\n"), flags=re.M)
        lines += [SEPARATOR, body.rstrip("\n"), ""]
    result = subprocess.run(
        [ensure_spamassassin(), "-L", "-t", "--mbox"],
        input="\n".join(lines).encode(),
        capture_output=True,
        check=False,
        timeout=300,
    )
    output = result.stdout.decode("utf-8", "replace")
    found = {}
    for report in output.split(SEPARATOR + "\n")[1:]:
        message_id = re.search(r"^Message-ID:\s*(\S+)", report, re.M | re.I)
        assert message_id is not None, report[:2000]
        details = report.rsplit("Content analysis details:", 1)[-1]
        points = re.search(r"\((-?\d+\.\d+) points", details)
        assert points is not None, report[-2000:]
        # Rules that scored (informational ones such as HTML_MESSAGE score 0.0).
        rules = {
            name
            for value, name in re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", details, re.M)
            if float(value) != 0.0
        }
        found[message_id.group(1)] = (float(points.group(1)), rules, details)
    assert len(found) == len(raws), (len(found), result.stderr.decode()[-2000:])
    return found


@pytest.fixture
def production_like(settings):
    settings.DEFAULT_FROM_EMAIL = "The Morning Briefing <briefing@news.example.com>"
    settings.SITE_URL = "https://news.example.com"
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@news.example.com"
    settings.BOUNCE_DOMAIN = "bounces.news.example.com"


def every_email(smtp_server):
    """Send one of every email the project sends; return them as received, by name."""
    make_article(title="Six nations sign a river treaty", dek="After eleven years of talks.")
    make_article(title="A quiet revolution in batteries", dek="Sodium, not lithium.")
    trial_end = timezone.now() + datetime.timedelta(days=10)
    trialing = make_subscriber(
        "ada@example.com",
        name="Ada",
        membership=Membership.Status.TRIALING,
        membership_fields={"trial_end": trial_end},
    )
    make_subscriber("grace@example.com", membership=Membership.Status.PAST_DUE,
                    membership_fields={"past_due_since": timezone.now()})  # fmt: skip
    make_subscriber("quoted@example.com", name="Zoë, Q.")  # Django's path, not the fast one
    make_subscriber("zoe@xn--bcher-kva.example")  # an IDN domain
    edition = built_edition(MONDAY)
    by_hand.send_edition_in_process(edition.pk)
    assert len(smtp_server.received()) == 4

    contexts = {
        ReaderEmail.Kind.WELCOME: {"trial_end": trial_end.isoformat()},
        ReaderEmail.Kind.TRIAL_ENDING: {
            "trial_end": trial_end.isoformat(),
            "amount": 4600,
        },
        ReaderEmail.Kind.PAYMENT_FAILED: {
            "amount": 4600,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_1",
        },
        ReaderEmail.Kind.PAYMENT_ACTION_REQUIRED: {
            "amount": 4600,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_2",
        },
        ReaderEmail.Kind.MEMBERSHIP_ENDED: {"status": "canceled"},
    }
    for kind, context in contexts.items():
        email = ReaderEmail.objects.create(
            subscriber=trialing, kind=kind, cause=f"sub_{kind}", context=context
        )
        reader_emails.build(email).send()
    reader_emails.sign_in_link(trialing).send()
    signup = reader_emails.signup_reply("new@example.com", "", "Europe/London")
    assert signup is not None
    signup.send()

    # The staff's send-health alert.
    make_staff("desk", email="desk@news.example.com")
    delivery = Delivery.objects.get(subscriber=trialing)
    suppression.do_record(
        trialing.pk, BounceEvent.Kind.COMPLAINT, source="mailbox", delivery_id=delivery.pk
    )
    health.check_health(edition.pk)
    return smtp_server.received()


def test_every_email_scores_zero(smtp_server, settings, production_like):
    settings.MAILERS = {
        "default": {
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10},
        }
    }
    received = every_email(smtp_server)
    subjects = [mail.message["Subject"] for mail in received]
    # Four digests, five membership emails, sign-in, signup, the staff alert.
    assert len(received) == 12, subjects
    assert django_mail.outbox == []

    scored = scores([mail.data for mail in received])
    failures = []
    for mail in received:
        points, rules, details = scored[mail.message["Message-ID"]]
        if points != 0.0 or rules - ALLOWED:
            failures.append(f"{mail.message['Subject']} to {mail.rcpt_tos}: {points}\n{details}")
    assert not failures, "\n\n".join(failures)
