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

import idna
from django.core.exceptions import ValidationError

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
