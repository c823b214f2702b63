"""The DNS records the sending domain needs, and with --check whether DNS has them.

Gmail and Yahoo refuse bulk mail that does not pass SPF or DKIM aligned with
the From domain, and want a DMARC record (docs/deliverability.md). This
prints what the operator must publish, from the settings the app sends
with: the From domain, the ESP or relay, and the DKIM key the app signs with.
"""

from dataclasses import dataclass
from typing import Any, Protocol

import dns.exception
import dns.resolver
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from delivery.deliverability import dkim
from subscriptions.addresses import domain_of_address

# What each ESP's documentation says to include in SPF.
ESP_SPF = {
    "amazon_ses": "include:amazonses.com",
    "postmark": "include:spf.mtasv.net",
    "mailgun": "include:mailgun.org",
    "sendgrid": "include:sendgrid.net",
}


class Resolver(Protocol):
    def resolve(self, qname: str, rdtype: str) -> Any: ...


@dataclass
class Record:
    kind: str
    name: str
    value: str
    # What must appear in the published record for it to count (SPF: our
    # mechanism; DKIM: the key; DMARC: just the version tag).
    expect: str
    note: str = ""


def spf_mechanism() -> tuple[str, str]:
    esp = getattr(settings, "EMAIL_ESP", None)
    if esp in ESP_SPF:
        return ESP_SPF[esp], f"{esp} sends for you"
    mailer: dict[str, Any] = dict(settings.MAILERS.get("default", {}))
    host = str(mailer.get("OPTIONS", {}).get("host", ""))
    if host:
        return f"a:{host}", (
            f"assumes {host} is also the host that delivers to the internet; "
            "if your relay sends from other addresses, use its published SPF include"
        )
    return "mx", "no SMTP_URL or EMAIL_ESP is set: replace with your mail server"


def records() -> list[Record]:
    domain = domain_of_address(settings.DEFAULT_FROM_EMAIL)
    mechanism, why = spf_mechanism()
    found: list[Record] = [
        Record("SPF", domain, f"v=spf1 {mechanism} ~all", mechanism, why),
    ]
    bounce = getattr(settings, "BOUNCE_DOMAIN", "")
    if bounce and bounce != domain:
        # SPF is checked on the envelope sender (VERP, delivery/deliverability/verp.py).
        found.append(
            Record(
                "SPF",
                bounce,
                f"v=spf1 {mechanism} ~all",
                mechanism,
                "the envelope sender's domain (BOUNCE_DOMAIN); give it an MX to the "
                "bounce mailbox too",
            )
        )
    signer = dkim.signer()
    if signer is not None:
        found.append(
            Record(
                "DKIM",
                f"{signer.selector}._domainkey.{signer.domain}",
                dkim.dns_record(signer.private_key),
                dkim.dns_record(signer.private_key).split("p=", 1)[1],
            )
        )
    found.append(
        Record(
            "DMARC",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r",
            "v=DMARC1",
            "start with p=none and read the reports; then quarantine or reject",
        )
    )
    return found


def txt_records(resolver: Resolver, name: str) -> list[str]:
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    # A long TXT record arrives as several strings of up to 255 bytes: one text.
    return [b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer]


def status(record: Record, published: list[str]) -> tuple[str, str]:
    """("found" | "missing" | "mismatched", what DNS has)."""
    prefix = {"SPF": "v=spf1", "DKIM": "v=DKIM1", "DMARC": "v=DMARC1"}[record.kind]
    relevant = [text for text in published if text.replace(" ", "").startswith(prefix)]
    if record.kind == "DKIM":
        # An old record may lack v=DKIM1 (it is optional): any record with p= counts.
        relevant = [text for text in published if "p=" in text]
    if not relevant:
        return "missing", ""
    normalised = [text.replace(" ", "") for text in relevant]
    expect = record.expect.replace(" ", "")
    if record.kind == "DKIM":
        ok = any(text.split("p=", 1)[1].split(";")[0] == expect for text in normalised)
    else:
        ok = len(relevant) == 1 and expect in normalised[0]  # two SPF records are an error too
    return ("found" if ok else "mismatched"), " | ".join(relevant)


class Command(BaseCommand):
    help = "Print the SPF, DKIM and DMARC records to publish; --check looks them up in DNS."
    # Tests pass a resolver answering from recorded replies: never the internet.
    stealth_options = ("resolver",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="query DNS for each record")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = records()
        if dkim.signer() is None:
            self.stdout.write(
                "DKIM: the app does not sign (no DKIM_PRIVATE_KEY): your ESP or relay must, "
                "with the record it gives you.\n"
            )
        for record in wanted:
            self.stdout.write(f"{record.kind}: TXT {record.name}\n  {record.value}")
            if record.note:
                self.stdout.write(f"  ({record.note})")
        if not options["check"]:
            return
        resolver: Resolver = options.get("resolver") or dns.resolver.Resolver()
        self.stdout.write("")
        problems = 0
        for record in wanted:
            try:
                published = txt_records(resolver, record.name)
            except dns.exception.DNSException as error:
                self.stdout.write(f"{record.kind}: unknown ({error.__class__.__name__})")
                problems += 1
                continue
            state, text = status(record, published)
            line = f"{record.kind}: {state}" + (f": {text}" if state == "mismatched" else "")
            self.stdout.write(line)
            problems += state != "found"
        if problems:
            raise CommandError(f"{problems} of {len(wanted)} records are not as they should be.")
