"""DKIM signatures made by the app, for relays that do not sign (RFC 6376).

An ESP (SES, Postmark, Mailgun) signs with the keys the operator set up in
its dashboard; a plain SMTP relay (a VPS's Postfix, a smarthost) often does
not, and Gmail and Yahoo refuse bulk mail without a DKIM signature aligned
with the From domain. With DKIM_SELECTOR and DKIM_PRIVATE_KEY set, every
message sent over SMTP is signed here: Django-built ones in the backend
(delivery.wire.backend.SigningSMTPBackend) and the digest's pre-assembled bytes in
delivery.batches.Sender, which hands them to smtplib directly.

Each message is signed on its own (its To, Message-ID, unsubscribe link and
greeting differ), so the cost is paid per message. dkimpy canonicalises and
hashes (as every receiver that verifies with it does); the one RSA operation
is OpenSSL's (cryptography), not dkimpy's pure-Python arithmetic: 0.8 ms
instead of 14 ms per message for a 2048-bit key on the benchmark machine.
PKCS#1 v1.5 signatures are deterministic, so the result is byte for byte
what dkimpy alone would write (delivery/tests/test_dkim.py checks it).
"""

import base64
import functools
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

# What a receiver must be able to trust was written by us. The List-* headers
# matter most after From: a relay that rewrote List-Unsubscribe could point
# one-click unsubscribes anywhere. Headers named here that a message lacks
# (Reply-To, the List-* headers of a reader email) are signed as absent, so
# nobody can add them later without breaking the signature (RFC 6376 §5.4).
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)
# Relaxed headers survive relays that re-fold them. The body is simple: we
# write it ourselves in CRLF lines, 7bit, quoted-printable or base64 (so no
# trailing blanks for a relay to trim), and relaxed body canonicalisation
# (whitespace regexes over the whole body) was 60% of dkimpy's hashing time.
CANONICALIZE = (b"relaxed", b"simple")


def normalise_pem(value: str) -> bytes:
    """A PEM key from the environment, which often cannot hold line breaks: accept "\\n"."""
    return value.strip().replace("\\n", "\n").encode("ascii")


class _OpenSSLDKIM(dkim.DKIM):
    """dkimpy's signer, with the RSA signature made by OpenSSL.

    gen_header is dkimpy 1.1's own for rsa-sha256 without `standardize`, but
    for the line that signs the hash: that is the only change.
    """

    key: rsa.RSAPrivateKey

    def gen_header(  # type: ignore[no-untyped-def]
        self, fields, include_headers, canon_policy, header_name, pk, standardize=False
    ):
        header_value = b"; ".join(b"=".join(x) for x in fields)
        header_value = dkim.fold(header_value, namelen=len(header_name), linesep=b"\r\n")
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        h = dkim.HashThrough(self.hasher(), self.debug_content)
        sig = dict(fields)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(
            h, canon_policy, headers, include_headers, header, sig
        )
        signature = self.key.sign(h.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        index = next(i for i, (name, _) in enumerate(fields) if name == b"b")
        fields[index] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return dkim.fold(header_value, namelen=len(header_name), linesep=self.linesep)


@dataclass(frozen=True)
class DkimSigner:
    selector: str
    domain: str
    private_key: bytes = field(repr=False)  # never in a log line or a traceback's locals
    _key: rsa.RSAPrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Fails at start-up, not at the first send of a morning.
        try:
            parse_pem_private_key(self.private_key)
            key = serialization.load_pem_private_key(self.private_key, password=None)
        except (UnparsableKeyError, ValueError, IndexError, TypeError) as error:
            raise ImproperlyConfigured(
                f"DKIM_PRIVATE_KEY is not an RSA private key in PEM form: {error}"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ImproperlyConfigured("DKIM_PRIVATE_KEY must be an RSA key (rsa-sha256).")
        if key.key_size < 1024:
            raise ImproperlyConfigured("DKIM_PRIVATE_KEY is too short: use 2048 bits.")
        object.__setattr__(self, "_key", key)

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header field (with its CRLF) for these message bytes."""
        signer = _OpenSSLDKIM(message, linesep=b"\r\n")
        signer.key = self._key
        return signer.sign(
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.private_key,
            canonicalize=CANONICALIZE,
            include_headers=list(SIGNED_HEADERS),
        )

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature prepended, as receivers expect it first."""
        return self.signature(message) + message


def signer() -> DkimSigner | None:
    """The configured signer, or None when the app does not sign (no DKIM_PRIVATE_KEY)."""
    key = getattr(settings, "DKIM_PRIVATE_KEY", None)
    if not key:
        return None
    return _signer(settings.DKIM_SELECTOR, settings.DKIM_DOMAIN, key)


@functools.cache
def _signer(selector: str, domain: str, key: str) -> DkimSigner:
    # Cached by value: parsing the key once per process, and tests that
    # change the settings get a signer of their own.
    return DkimSigner(selector=selector, domain=domain, private_key=normalise_pem(key))


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_integer(value: int) -> bytes:
    # One more byte than the bits need, so a set top bit is not read as negative.
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")  # OID 1.2.840.113549.1.1.1
NULL = bytes.fromhex("0500")


def public_key_der(private_key: bytes) -> bytes:
    """The SubjectPublicKeyInfo (DER) of an RSA private key: what DKIM's p= tag holds.

    Built here from the key's modulus and exponent (dkimpy reads keys but
    does not write them), so the operator's DNS record comes from the very
    key the app signs with.
    """
    key = parse_pem_private_key(private_key)
    rsa_public_key = _der(0x30, _der_integer(key["modulus"]) + _der_integer(key["publicExponent"]))
    algorithm = _der(0x30, RSA_ENCRYPTION + NULL)
    return _der(0x30, algorithm + _der(0x03, b"\x00" + rsa_public_key))


def dns_record(private_key: bytes) -> str:
    """The TXT record's text for <selector>._domainkey.<domain>."""
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_key_der(private_key)).decode("ascii")
