"""DKIM signatures made by the app, checked as a receiver checks them (dkimpy, our DNS).

Digests on the SMTP fast path and on Django's path, and reader emails, all
verify against the published public key; changing a signed header after
signing breaks the signature; with signing off nothing is added.
"""

import re

import dkim
import pytest
from django.core.exceptions import ImproperlyConfigured

from delivery import by_hand
from delivery.deliverability import dkim as dkim_signing
from delivery.models import Delivery
from delivery.wire import mime
from newsletter.tests.factories import built_edition, make_article
from subscriptions import emails
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.dkim import SELECTOR, TEST_PRIVATE_KEY, dkim_dns

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

DOMAIN = "briefing.example.com"
COVERED = {
    "from", "to", "subject", "date", "message-id",
    "list-id", "list-unsubscribe", "list-unsubscribe-post",
}  # fmt: skip


@pytest.fixture
def signing(settings, smtp_server):
    """DKIM on, and the SMTP server reached through the signing backend, as SMTP_URL sets it."""
    settings.SITE_URL = f"https://{DOMAIN}"
    settings.DEFAULT_FROM_EMAIL = f"The Morning Briefing <briefing@{DOMAIN}>"
    settings.DKIM_SELECTOR = SELECTOR
    settings.DKIM_DOMAIN = DOMAIN
    settings.DKIM_PRIVATE_KEY = TEST_PRIVATE_KEY
    settings.MAILERS["default"]["BACKEND"] = "delivery.wire.backend.SigningSMTPBackend"
    return smtp_server


def wire_bytes(mail) -> bytes:
    return mail.data.encode("utf-8", "surrogateescape")


def signed_headers(data: bytes) -> set[str]:
    header = re.search(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", data, re.S)
    assert header is not None, data[:400]
    tags = re.search(rb"h=([^;]*)", header.group(1))
    assert tags is not None
    return {
        name.strip().decode().lower() for name in re.sub(rb"\s", b"", tags.group(1)).split(b":")
    }


def test_every_digest_verifies_on_the_fast_path_and_on_djangos(signing, monkeypatch):
    make_article(title="Rivers & treaties — a “long” road", dek="Café talks " * 12)
    make_subscriber("plain@example.com", name="Ada Lovelace")
    make_subscriber("accent@example.com", name="José Núñez")  # Django's path: an encoded name
    assembled = []
    bytes_for = mime.FastDigest.bytes_for

    def counting(self, reader, message_id):
        data = bytes_for(self, reader, message_id)
        if data is not None:
            assembled.append(reader.email)
        return data

    monkeypatch.setattr(mime.FastDigest, "bytes_for", counting)
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    assert assembled == ["plain@example.com"]  # the fast path was taken, and signed
    received = signing.received()
    assert {mail.rcpt_tos[0] for mail in received} == {"plain@example.com", "accent@example.com"}
    dns = dkim_dns(DOMAIN)
    for mail in received:
        data = wire_bytes(mail)
        assert data.startswith(b"DKIM-Signature: "), mail.rcpt_tos
        assert dkim.verify(data, dnsfunc=dns), mail.rcpt_tos
        assert signed_headers(data) >= COVERED
        assert f"d={DOMAIN}".encode() in data and f"s={SELECTOR}".encode() in data


def test_a_changed_unsubscribe_link_or_body_breaks_the_signature(signing):
    make_article()
    make_subscriber("plain@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)
    [mail] = signing.received()
    data = wire_bytes(mail)
    dns = dkim_dns(DOMAIN)
    assert dkim.verify(data, dnsfunc=dns)
    for tampered in [
        re.sub(rb"(List-Unsubscribe:\s*<https://)", rb"\1evil.", data),
        data.replace(b"Good morning", b"Good evening"),
    ]:
        assert tampered != data
        assert not dkim.verify(tampered, dnsfunc=dns)
    # Another key under the same selector: the signature is the key's, not a formality.
    other = dkim_dns(DOMAIN, selector="other")
    assert not dkim.verify(data, dnsfunc=other)


def test_a_reader_email_verifies(signing):
    reader = make_subscriber("reader@example.com", name="Ada")
    emails.sign_in_link(reader).send()
    [mail] = signing.received()
    data = wire_bytes(mail)
    assert dkim.verify(data, dnsfunc=dkim_dns(DOMAIN))
    assert {"from", "to", "subject", "date", "message-id"} <= signed_headers(data)


def test_without_a_key_nothing_is_signed(settings, smtp_server):
    settings.MAILERS["default"]["BACKEND"] = "delivery.wire.backend.SigningSMTPBackend"
    settings.DKIM_PRIVATE_KEY = None
    make_article()
    reader = make_subscriber("plain@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)
    emails.sign_in_link(reader).send()
    received = smtp_server.received()
    assert len(received) == 2
    assert all(b"DKIM-Signature" not in wire_bytes(mail) for mail in received)
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_key_from_the_environment_may_have_escaped_line_breaks(settings):
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = SELECTOR, DOMAIN
    settings.DKIM_PRIVATE_KEY = TEST_PRIVATE_KEY.strip().replace("\n", "\\n")
    signer = dkim_signing.signer()
    assert signer is not None
    assert "PRIVATE" not in repr(signer)  # the key never reaches a log line


def test_a_key_that_is_not_a_key_is_refused_with_the_variables_name(settings):
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = SELECTOR, DOMAIN
    settings.DKIM_PRIVATE_KEY = (
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----"
    )
    with pytest.raises(ImproperlyConfigured, match="DKIM_PRIVATE_KEY"):
        dkim_signing.signer()


def test_the_openssl_signature_is_byte_for_byte_dkimpys_own(signing):
    # PKCS#1 v1.5 is deterministic and the clock is frozen (t=): the only
    # difference allowed between the two is speed.
    make_article()
    make_subscriber("plain@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)
    [mail] = signing.received()
    message = wire_bytes(mail)
    header = re.match(rb"DKIM-Signature:.*?\r\n(?![ \t])", message, re.S)
    assert header is not None
    unsigned = message[header.end() :]
    signer = dkim_signing.signer()
    assert signer is not None
    pure_python = dkim.sign(
        unsigned, SELECTOR.encode(), DOMAIN.encode(), TEST_PRIVATE_KEY.encode(),
        canonicalize=dkim_signing.CANONICALIZE, include_headers=list(dkim_signing.SIGNED_HEADERS),
    )  # fmt: skip
    assert signer.signature(unsigned) == pure_python
    assert message == pure_python + unsigned
