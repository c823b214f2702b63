"""The digest's MIME message, serialised once and filled in per reader.

Building an email with Python's email package costs about 4 ms, most of it
encoding the HTML part as quoted-printable and folding headers. For a batch
of readers that differ only in a few fields this is done once: a prototype
message is built by Django exactly as the SMTP backend would build it, cut
into its static bytes and the few places that change per reader (the To and
List-Unsubscribe headers, Date, Message-ID, and each body part's encoding and
content), and each reader's bytes are then assembled from the pieces.

Every piece is produced by the same rules the email package applies (see
`encode_body`, which follows email.contentmanager's choice of transfer
encoding), and a test checks, reader by reader, that the result is
byte-for-byte what Django would send apart from the Date, Message-ID and
random MIME boundary. Readers whose name or address needs more than plain
ASCII (quoting, encoded words, IDNA) are not assembled: `bytes_for` returns
None and the caller uses Django's own path for them.
"""

import binascii
import email.policy
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.quoprimime import body_encode
from email.utils import format_datetime, formataddr, make_msgid

from newsletter.emails import DigestTemplate, list_headers, site_host
from subscriptions.models import Subscriber, single_line

POLICY = email.policy.SMTP  # what Django's SMTP backend serialises with
MAX_LINE = POLICY.max_line_length
SNIFF_LINES = 10  # email.contentmanager decides between qp and base64 on these
LINE_BREAK = re.compile(rb"\r\n|\r|\n")  # what bytes.splitlines() splits on

# Names and addresses that email headers carry as they are: no quoting, no
# encoded words, no IDNA. Anything else takes Django's path.
PLAIN_NAME = re.compile(r"[A-Za-z0-9 !#$%&'*+/=?^_`{|}~-]*")
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


@dataclass
class EncodedLine:
    """One line of a body template: fixed, or with reader slots in it."""

    text: str
    has_slots: bool
    # For fixed lines, computed once:
    utf8_length: int = 0
    is_ascii: bool = True
    quoted_printable: str = ""


class BodyTemplate:
    """A text/* part whose content has reader slots, encoded as the email package would."""

    def __init__(self, content: str, slot: re.Pattern) -> None:
        self.slot = slot
        self.lines: list[EncodedLine] = []
        for line in content.encode("utf-8").splitlines():
            text = line.decode("utf-8")
            if slot.search(text):
                self.lines.append(EncodedLine(text, has_slots=True))
            else:
                latin1 = line.decode("latin-1")
                self.lines.append(
                    EncodedLine(
                        text,
                        has_slots=False,
                        utf8_length=len(line),
                        is_ascii=line.isascii(),
                        quoted_printable=body_encode(latin1, MAX_LINE),
                    )
                )
        fixed = [line for line in self.lines if not line.has_slots]
        self.fixed_max_length = max((line.utf8_length for line in fixed), default=0)
        self.fixed_ascii = all(line.is_ascii for line in fixed)
        self.sniff_is_fixed = not any(line.has_slots for line in self.lines[:SNIFF_LINES])
        self.sniff_choice = self._sniff([line.text.encode() for line in self.lines])

    def _sniff(self, lines: list[bytes]) -> str:
        linesep = POLICY.linesep.encode("ascii")
        sniff = linesep.join(lines[:SNIFF_LINES]) + linesep
        sniff_qp = body_encode(sniff.decode("latin-1"), MAX_LINE)
        return "base64" if len(sniff_qp) > len(binascii.b2a_base64(sniff)) else "quoted-printable"

    def encode(self, values: dict[str, str]) -> tuple[str, str] | None:
        """(transfer encoding, payload with \\n line ends) for these slot values.

        Mirrors email.contentmanager._encode_text under the SMTP policy: 7bit
        when every line is ASCII and short enough, otherwise quoted-printable
        or base64, whichever the first lines favour. Quoted-printable encodes
        each line on its own, so only the lines with slots are encoded here.
        """
        fill = lambda match: values[match.group(1)]  # noqa: E731
        filled: list[list[bytes] | None] = []
        max_length, ascii_only = self.fixed_max_length, self.fixed_ascii
        for line in self.lines:
            if not line.has_slots:
                filled.append(None)
                continue
            # Split as the whole body would be: a value ending in a line break
            # leaves an empty line after it.
            parts = LINE_BREAK.split(self.slot.sub(fill, line.text).encode("utf-8"))
            filled.append(parts)
            for part in parts:
                max_length = max(max_length, len(part))
                ascii_only = ascii_only and part.isascii()

        if len(self.lines) + sum(len(p) - 1 for p in filled if p is not None) <= SNIFF_LINES:
            return None  # a body this short is encoded differently; not worth mirroring
        if max_length <= MAX_LINE and ascii_only:
            return "7bit", self._join(filled, lambda raw: raw.decode("ascii"), "text")

        choice = self.sniff_choice
        if not self.sniff_is_fixed:
            choice = self._sniff(self._raw_lines(filled))
        if choice == "base64":
            linesep = POLICY.linesep.encode("ascii")
            data = linesep.join(self._raw_lines(filled)) + linesep
            step = MAX_LINE // 4 * 3
            payload = "".join(
                binascii.b2a_base64(data[i : i + step]).decode("ascii")
                for i in range(0, len(data), step)
            )
            return "base64", payload
        return "quoted-printable", self._join(
            filled, lambda raw: body_encode(raw.decode("latin-1"), MAX_LINE), "quoted_printable"
        )

    def _raw_lines(self, filled: list[list[bytes] | None]) -> list[bytes]:
        lines: list[bytes] = []
        for line, parts in zip(self.lines, filled, strict=True):
            lines.extend([line.text.encode("utf-8")] if parts is None else parts)
        return lines

    def _join(self, filled, encode_dynamic, fixed_attribute: str) -> str:
        out = []
        for line, parts in zip(self.lines, filled, strict=True):
            if parts is None:
                out.append(line.text if fixed_attribute == "text" else line.quoted_printable)
            else:
                out.extend(encode_dynamic(part) for part in parts)
        return "\n".join(out) + "\n"


class FastDigest:
    """The bytes of one edition's digest for many readers, assembled from pieces."""

    def __init__(self, digest: DigestTemplate) -> None:
        self.digest = digest
        nonce = secrets.token_hex(6)
        self.boundary = f"===============fast{nonce}=="
        prototype_reader = Subscriber(pk=0, email=f"prototype-{nonce}@example.invalid")
        self.prototype_to = prototype_reader.email
        message = digest.message_for(prototype_reader)
        mime = message.message(policy=POLICY)
        mime.set_boundary(self.boundary)
        self._cut(mime.as_bytes(), digest)

    def _cut(self, data: bytes, digest: DigestTemplate) -> None:
        head, _, body = data.partition(b"\r\n\r\n")
        # Header block: keep every header but the per-reader ones, in order.
        self.header_pieces: list[bytes | str] = []
        for field in re.split(rb"\r\n(?! )", head):
            name = field.split(b":", 1)[0].lower()
            if name in {b"to", b"date", b"message-id", b"list-unsubscribe"}:
                self.header_pieces.append(name.decode())
            else:
                self.header_pieces.append(field + b"\r\n")
        separator = b"--" + self.boundary.encode()
        preamble, text_part, html_part, epilogue = body.split(separator)
        self.preamble, self.epilogue = preamble, epilogue
        self.parts = []
        for part, content in ((text_part, digest.text), (html_part, digest.html)):
            part_head = part.partition(b"\r\n\r\n")[0]
            fields = re.split(rb"\r\n(?! )", part_head.removeprefix(b"\r\n"))
            head_pieces = [
                "cte"
                if field.lower().startswith(b"content-transfer-encoding:")
                else field + b"\r\n"
                for field in fields
            ]
            self.parts.append((head_pieces, BodyTemplate(content, digest._slot)))
        self.unsubscribe_fold_cache: dict[int, tuple[str, str]] = {}

    def _list_unsubscribe(self, value: str, link: str) -> bytes:
        # Folding depends only on the lengths of the two whitespace-separated
        # words; the link's length varies with the reader's id. Fold once per length.
        cached = self.unsubscribe_fold_cache.get(len(link))
        if cached is None:
            folded = POLICY.header_factory("List-Unsubscribe", value).fold(policy=POLICY)
            if "=?" in folded:
                return None  # too long to fold at whitespace; let Django do it
            cached = (folded, link)
            self.unsubscribe_fold_cache[len(link)] = cached
        folded, cached_link = cached
        return folded.replace(cached_link, link).encode("ascii")

    def bytes_for(self, subscriber: Subscriber, message_id: str) -> bytes | None:
        """The reader's message, or None when it needs Django's path."""
        name = single_line(subscriber.name)
        if not PLAIN_NAME.fullmatch(name) or not PLAIN_ADDRESS.fullmatch(subscriber.email):
            return None
        to = formataddr((name, subscriber.email))
        to_line = f"To: {to}\r\n"
        if len(to_line) > MAX_LINE + 2:
            return None
        values, html_values = self.digest.reader_values(subscriber)
        link = values["unsubscribe_url"]
        list_unsubscribe = self._list_unsubscribe(list_headers(link)["List-Unsubscribe"], link)
        if list_unsubscribe is None:
            return None
        per_reader = {
            "to": to_line.encode("ascii"),
            "date": f"Date: {current_date()}\r\n".encode("ascii"),
            "message-id": f"Message-ID: {message_id}\r\n".encode("ascii"),
            "list-unsubscribe": list_unsubscribe,
        }
        out = [
            piece if isinstance(piece, bytes) else per_reader[piece] for piece in self.header_pieces
        ]
        out.append(b"\r\n")
        out.append(self.preamble)
        for (part_head, body), part_values in zip(self.parts, (values, html_values), strict=True):
            encoded = body.encode(part_values)
            if encoded is None:
                return None
            cte, payload = encoded
            cte_line = f"Content-Transfer-Encoding: {cte}\r\n".encode("ascii")
            out += [b"--", self.boundary.encode(), b"\r\n"]
            out += [cte_line if piece == "cte" else piece for piece in part_head]
            out += [b"\r\n", payload.replace("\n", "\r\n").encode("ascii"), b"\r\n"]
        out += [b"--", self.boundary.encode(), self.epilogue]
        return b"".join(out)


_date_cache: tuple[int, str] = (0, "")


def current_date() -> str:
    """The Date header value, as the email package writes it (UTC), once a second."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _date_cache[1]


def new_message_id() -> str:
    return make_msgid(domain=site_host())
