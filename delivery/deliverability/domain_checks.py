"""Deployment checks that know this product: `manage.py check --deploy`.

Django's own deploy checks look at cookies, HSTS and the secret key. What
makes a newsletter land in the spam folder, or its bounce webhook open to
anyone, is elsewhere: links over http, a From domain that cannot pass SPF,
DKIM or DMARC, an ESP webhook without its secret, mail relayed in plain text.
Each is a warning (so `--fail-level WARNING` stops a deploy) and only with
DEBUG off: the demo runs on localhost over http on purpose.
"""

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.utils.module_loading import import_string

from subscriptions.addresses import domain_of_address

LOCAL_HOSTS = {"localhost", "localhost.localdomain"}
# The webhook's basic-auth password is the only proof an event comes from
# the ESP (Amazon SES's SNS messages are not verified by anymail): this short
# is guessable.
MIN_WEBHOOK_PASSWORD = 16


def is_local_host(host: str) -> bool:
    """localhost, a *.localhost name or a loopback address: mail that stays on the machine."""
    host = host.strip("[]").lower()
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_same_or_parent(domain: str, host: str) -> bool:
    """`domain` is `host` or one of its parents (example.com for news.example.com)."""
    return host == domain or host.endswith("." + domain)


@register(Tags.security, deploy=True)
def check_site_url(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or urlsplit(settings.SITE_URL).scheme == "https":
        return []
    return [
        CheckWarning(
            f"SITE_URL is {settings.SITE_URL!r}, not https.",
            hint="Every link in every email starts with SITE_URL: unsubscribe and "
            "preferences tokens would travel in clear text, and mail providers "
            "distrust http links. Set SITE_URL=https://your.site.",
            id="briefing.W001",
        )
    ]


@register(Tags.mail, deploy=True)
def check_from_domain(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    domain = domain_of_address(settings.DEFAULT_FROM_EMAIL)
    site = (urlsplit(settings.SITE_URL).hostname or "").lower()
    if not domain or is_local_host(domain) or is_ip_address(domain) or "." not in domain:
        return [
            CheckWarning(
                f"DEFAULT_FROM_EMAIL {settings.DEFAULT_FROM_EMAIL!r} has no public domain.",
                hint="Mail from localhost or an IP address cannot pass SPF, DKIM or "
                "DMARC, and Gmail and Yahoo reject it from bulk senders. Use an "
                "address on your site's domain, e.g. briefing@" + (site or "your.site") + ".",
                id="briefing.W002",
            )
        ]
    if site and not is_same_or_parent(domain, site):
        return [
            CheckWarning(
                f"The From domain {domain!r} is not the site's domain {site!r} or a parent of it.",
                hint="Readers (and DMARC) expect the links in an email to belong to its "
                "sender; a mismatch looks like phishing. Send from an address on "
                f"{site} or its parent domain, or change SITE_URL.",
                id="briefing.W003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_esp_webhook_secret(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    esp = getattr(settings, "EMAIL_ESP", None)
    if settings.DEBUG or not esp:
        return []
    secret = getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET") or ""
    user, colon, password = secret.partition(":")
    if not colon or not user or len(password) < MIN_WEBHOOK_PASSWORD:
        return [
            CheckWarning(
                f"EMAIL_ESP is {esp!r} but ANYMAIL_WEBHOOK_SECRET is missing or weak.",
                hint="The tracking webhook marks readers bounced or complained; without "
                "a strong user:password anyone can stop a reader's emails. Set "
                f"ANYMAIL_WEBHOOK_SECRET=user:password with a random password of at "
                f"least {MIN_WEBHOOK_PASSWORD} characters.",
                id="briefing.W004",
            )
        ]
    if esp == "mailgun" and not getattr(settings, "ANYMAIL", {}).get("MAILGUN_WEBHOOK_SIGNING_KEY"):
        return [
            CheckWarning(
                "EMAIL_ESP is 'mailgun' but Mailgun's webhook signing key "
                "(MAILGUN_WEBHOOK_SIGNING_KEY in ANYMAIL) is not set.",
                hint="Without it Mailgun's events cannot be verified: EMAIL_ESP="
                "mailgun://<api key>@<api host>/<domain>?webhook_signing_key=<key>.",
                id="briefing.W004",
            )
        ]
    return []


@register(Tags.mail, deploy=True)
def check_smtp_tls(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    mailer: dict[str, Any] = dict(settings.MAILERS.get("default", {}))
    try:
        backend = import_string(str(mailer.get("BACKEND", "")))
    except ImportError:
        return []
    if not (isinstance(backend, type) and issubclass(backend, SMTPBackend)):
        return []
    options: dict[str, Any] = mailer.get("OPTIONS", {})
    host = str(options.get("host", "localhost"))
    if options.get("use_tls") or options.get("use_ssl") or is_local_host(host):
        return []
    return [
        CheckWarning(
            f"SMTP_URL sends to {host!r} in plain text (no tls=1, no smtps://).",
            hint="The relay's password and every reader's email would cross the network "
            "readable by anyone on the path. Use smtps://…:465 or smtp://…:587?tls=1.",
            id="briefing.W005",
        )
    ]


@register(Tags.mail, deploy=True)
def check_dkim_alignment(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    if settings.DEBUG or not getattr(settings, "DKIM_PRIVATE_KEY", None):
        return []
    signing = settings.DKIM_DOMAIN.lower()
    sender = domain_of_address(settings.DEFAULT_FROM_EMAIL)
    # DMARC's relaxed alignment: d= and the From domain share their
    # organisational domain. The same domain or a parent of it is what can
    # be told without a public-suffix list.
    if is_same_or_parent(signing, sender):
        return []
    return [
        CheckWarning(
            f"DKIM_DOMAIN {signing!r} does not align with the From domain {sender!r}.",
            hint="DMARC passes on DKIM only when the signing domain is the From domain "
            "or its parent: sign with the From domain (the DKIM_DOMAIN setting's default).",
            id="briefing.W006",
        )
    ]


@register(Tags.mail, deploy=True)
def check_bounce_domain(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    bounce = getattr(settings, "BOUNCE_DOMAIN", "")
    if settings.DEBUG:
        return []
    if not bounce:
        if getattr(settings, "BOUNCE_MAILBOX_URL", None) and not getattr(
            settings, "EMAIL_ESP", None
        ):
            # Anyone can write a "bounce" naming any reader: without the signed
            # return addresses there is no telling a real one, so none is applied.
            return [
                CheckWarning(
                    "BOUNCE_MAILBOX_URL is set without BOUNCE_DOMAIN: no bounce or complaint "
                    "in the mailbox can be verified, so each is kept for a person, never applied.",
                    hint="Set BOUNCE_DOMAIN (a subdomain of the From domain delivering to "
                    "that mailbox) so each email's return address is signed (VERP).",
                    id="briefing.W009",
                )
            ]
        return []
    sender = domain_of_address(settings.DEFAULT_FROM_EMAIL)
    found: list[CheckMessage] = []
    # SPF is checked on the envelope sender's domain: DMARC counts it only
    # when that domain is the From domain or below it (relaxed alignment).
    if not is_same_or_parent(sender, bounce):
        found.append(
            CheckWarning(
                f"BOUNCE_DOMAIN {bounce!r} is not the From domain {sender!r} or below it.",
                hint="SPF passes for the envelope sender's domain; DMARC aligns it with From "
                f"only for a subdomain such as bounces.{sender}.",
                id="briefing.W007",
            )
        )
    if getattr(settings, "EMAIL_ESP", None):
        found.append(
            CheckWarning(
                "BOUNCE_DOMAIN is set with EMAIL_ESP: the ESP chooses the envelope sender.",
                hint="Unset BOUNCE_DOMAIN; the ESP's tracking webhook reports bounces.",
                id="briefing.W008",
            )
        )
    elif not getattr(settings, "BOUNCE_MAILBOX_URL", None):
        found.append(
            CheckWarning(
                "BOUNCE_DOMAIN is set but BOUNCE_MAILBOX_URL is not: bounces pile up unread.",
                hint="Set BOUNCE_MAILBOX_URL to the mailbox BOUNCE_DOMAIN delivers to "
                "(imaps://user:password@host/INBOX).",
                id="briefing.W008",
            )
        )
    return found
