"""Email addresses, normalised one way everywhere: forms, lookups, rate limits, uniqueness.

An address is stored and compared as its local part, as typed, and its
domain as a lower-case A-label (`zoe@xn--bcher-kva.example`), and shown
with the domain in Unicode (`zoe@bücher.example`). Local parts must be
ASCII: a Unicode one cannot be delivered by most mail systems, and its
look-alike letters (U+017F, long s; U+0131, dotless i) match `s` and `i` in
case-insensitive comparisons (Python's regular expressions, PostgreSQL's
UPPER()), so a long-s spelling of `sam@example.com` would stand for `sam@example.com` in one
place and not in another.
"""

import difflib
import re
from email.utils import parseaddr

import email_validator
import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

NOT_ASCII = (
    "Use the address with plain letters before the @ (no accented or special letters): "
    "we cannot deliver to it reliably."
)
INCOMPLETE = "Enter a complete email address, like name@example.com."
BAD_DOMAIN = "The part after the @ is not a domain that can receive email."


def normalise_email(address: str) -> str:
    """The one form of an address we store, look up and count; ValidationError if unusable."""
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain:
        raise ValidationError(INCOMPLETE, code="incomplete")
    if not local.isascii():
        raise ValidationError(NOT_ASCII, code="not_ascii")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise ValidationError(BAD_DOMAIN, code="bad_domain") from None
    return f"{local}@{ascii_domain.lower()}"


def display_email(address: str) -> str:
    """The address as people read it: the domain in Unicode."""
    local, sep, domain = address.rpartition("@")
    if not sep or "xn--" not in domain:
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except idna.IDNAError:
        return address


# The mail providers most readers use: an address one or two letters away from
# one of them is most likely a typo ("gmial.com"). An exact match, or any other
# domain, gets no suggestion.
COMMON_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com",
    "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com",
    "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "fastmail.com", "zoho.com",
    "yandex.ru", "mail.ru", "orange.fr", "free.fr", "btinternet.com", "comcast.net",
    "verizon.net", "att.net", "sbcglobal.net", "hey.com",
)  # fmt: skip
# Misspelt top-level domains that are not real ones (".co" and ".cm" are).
TLD_TYPOS = {
    "con": "com", "cmo": "com", "ocm": "com", "vom": "com", "xom": "com", "comm": "com",
    "coom": "com", "copm": "com", "net.": "net", "nte": "net", "ner": "net", "nett": "net",
    "ogr": "org", "orgg": "org",
}  # fmt: skip
SIMILARITY = 0.8  # difflib's ratio: one swapped or missing letter in a provider's name


def suggested_address(address: str) -> str | None:
    """The address with its domain's likely typo corrected ("gmial.con": gmail.com), or None."""
    local, _, domain = address.rpartition("@")
    if not local or domain in COMMON_DOMAINS:
        return None
    name, dot, tld = domain.rpartition(".")
    fixed = f"{name}.{TLD_TYPOS[tld]}" if dot and tld in TLD_TYPOS else domain
    if fixed not in COMMON_DOMAINS:
        close = difflib.get_close_matches(fixed, COMMON_DOMAINS, n=1, cutoff=SIMILARITY)
        fixed = close[0] if close else fixed
    return f"{local}@{fixed}" if fixed != domain else None


MAX_LENGTH = 254  # RFC 5321's limit on a path, less its angle brackets
TOO_LONG = "An email address has at most 254 characters."


def validate_address(value: str) -> str:
    """The stored form of an address someone typed; ValidationError if we would not send to it.

    The one check of every address that comes from outside (the reader
    forms, subscriptions.forms.ReaderEmailField, and the CSV import): one
    @, nothing a mail system would refuse or misread (spaces, line breaks,
    a second @: Django's EmailValidator), at most 254 characters, a plain
    ASCII local part, and a domain that can be on the internet. DNS is not
    asked here: the forms ask it after a typo has had its suggestion.
    """
    address = value.strip()
    if address and not address.isascii():
        # Judged before Django's validator, whose case-insensitive pattern
        # takes U+017F (long s) for `s` and U+0131 (dotless i) for `i`.
        normalise_email(address)
    if len(address) > MAX_LENGTH:
        raise ValidationError(TOO_LONG, code="too_long")
    validate_email(address)
    stored = normalise_email(address)
    check_can_receive_mail(stored, ask_dns=False)
    return stored


def check_can_receive_mail(address: str, *, ask_dns: bool) -> None:
    """ValidationError unless the address's domain can receive mail (email-validator).

    Always refused: domains that cannot be on the internet (localhost, .local,
    .test, a name without a dot). With `ask_dns` (EMAIL_CHECK_DELIVERABILITY),
    also a domain that DNS says has no mail server (no MX, A or AAAA record,
    or a null MX); a DNS that does not answer in time refuses nobody.
    """
    try:
        email_validator.validate_email(
            address, check_deliverability=ask_dns, allow_smtputf8=False, timeout=DNS_TIMEOUT
        )
    except email_validator.EmailUndeliverableError:
        raise ValidationError(UNDELIVERABLE, code="undeliverable") from None
    except email_validator.EmailNotValidError as error:
        raise ValidationError(str(error), code="invalid") from None


DNS_TIMEOUT = 3  # seconds; a form must answer even when DNS is slow
UNDELIVERABLE = (
    "The part after the @ is not a domain that receives email: check the address for a typo."
)


# An address as mail servers and providers quote it in their answers
# ("550 5.1.1 <ada@example.com>: no such user", Python's "{'ada@example.com': (550, ...)}"),
# its local part quoted ("ada lovelace"@, at most 64 characters as RFC 5321
# allows) or not; delimiters around it are left in place. It starts only after
# a delimiter: a long text is read once, not once per letter.
_DELIMITERS = r"""\s<>()\[\],;:"'"""
ADDRESS_IN_TEXT = re.compile(
    rf"""(?<![^{_DELIMITERS}])(?:"[^"\r\n]{{1,64}}"|[^{_DELIMITERS}@]+)"""
    rf"""@(?:\[[^\]\s]{{1,64}}\]|[^{_DELIMITERS}]+)"""
)
MASKED_ADDRESS = "[address]"


def mask_addresses(text: str) -> str:
    """`text` with every email address in it replaced by "[address]".

    For what we store or show beyond the reader's own pages (failure
    reasons, bounce details): nothing of the address is kept, not even its
    domain, which alone can name a small company or a person's own domain.
    Who may see readers finds the address through the row's reader.
    """
    return ADDRESS_IN_TEXT.sub(MASKED_ADDRESS, text)


def domain_of_address(address: str) -> str:
    """The domain of a From-style address ("Name <a@b.example>" → "b.example"), as an A-label.

    Lower case and IDNA-encoded, because that is how DNS (SPF, DKIM, DMARC
    records) and every comparison with the site's host name see it.
    """
    domain = parseaddr(address)[1].rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii") if domain else ""
    except idna.IDNAError:
        return domain
