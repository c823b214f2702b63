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
import itertools
import re
import secrets
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from email.quoprimime import body_encode
from email.utils import format_datetime, formataddr, make_msgid
from typing import NamedTuple

from django.conf import settings
from django.core.mail.message import EmailAlternative

from delivery.deliverability.verp import unsubscribe_mailto
from delivery.emails import DigestMessage, DigestTemplate, list_headers
from delivery.kept import KeptRecently
from delivery.models import site_host
from subscriptions.models import Subscriber, single_line

POLICY = email.policy.SMTP  # what Django's SMTP backend serialises with
if POLICY.max_line_length is None:  # pragma: no cover - the SMTP policy folds at 78
    raise RuntimeError("The SMTP email policy has no maximum line length.")
MAX_LINE: int = POLICY.max_line_length
SNIFF_LINES = 10  # email.contentmanager decides between qp and base64 on these
LINE_BREAK = re.compile(rb"\r\n|\r|\n")  # what bytes.splitlines() splits on
CRLF = b"\r\n"

# Names and addresses that email headers carry as they are: no quoting, no
# encoded words, no IDNA. Anything else takes Django's path.
PLAIN_NAME = re.compile(r"[A-Za-z0-9 !#$%&'*+/=?^_`{|}~-]*")
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def quoted_printable_line(line: bytes) -> str:
    """One line as email.quoprimime.body_encode encodes it (without its line end)."""
    text = line.decode("latin-1")
    # Of printable ASCII, quoted-printable changes only "=" (and a blank at
    # the end of a line); a line that then fits needs no soft breaks.
    if line.isascii() and text.isprintable() and not text.endswith(" "):
        encoded = text.replace("=", "=3D")
        if len(encoded) <= MAX_LINE:
            return encoded
        return soft_broken(encoded)
    return body_encode(text, MAX_LINE)


def soft_broken(encoded: str, soft_break: str = "\n") -> str:
    """An encoded line cut with soft breaks exactly where body_encode cuts it.

    body_encode's own loop (Python 3.12-3.13), without its per-character
    translation, which the caller has done: for printable ASCII only "="
    changes. Most of a digest's per-reader lines are links longer than a
    line, so this runs for each of them for every reader.
    """
    pieces = []
    start = 0
    last_start = len(encoded) - 1 - MAX_LINE
    while start <= last_start:
        stop = start + MAX_LINE - 1
        # Never cut inside an escape ("=3D"): the cut moves before it.
        if encoded[stop - 2] == "=":
            pieces.append(encoded[start : stop - 1])
            start = stop - 2
        elif encoded[stop - 1] == "=":
            pieces.append(encoded[start:stop])
            start = stop - 1
        else:
            pieces.append(encoded[start:stop] + "=")
            start = stop
    pieces.append(encoded[start:])
    return soft_break.join(pieces)


class FixedRun(NamedTuple):
    """Consecutive lines without reader slots, encoded once per content."""

    seven_bit: bytes  # the lines as they are, each ending in CRLF
    quoted_printable: bytes  # the lines quoted-printable, each ending in CRLF
    lines: list[bytes]  # the raw lines, for base64 and the sniff


class SlotLine(NamedTuple):
    """A line with reader slots: its text split at them (text, field, text, ...)."""

    parts: list[str]
    fields: tuple[str, ...]
    text_length: int  # of the text between the slots, in bytes
    # The text between the slots as quoted-printable writes it before it
    # cuts the line (qp_escaped).
    escaped: list[str]
    ascii: bool  # whether that text is ASCII (or the part cannot be 7bit)


# How quoted-printable writes each byte of a body before it cuts lines
# (email.quoprimime's body map): printable ASCII, the blank and the tab as
# they are, "=" and every other byte as "=XX".
QP_BYTES = [
    chr(byte) if (32 <= byte < 127 and byte != ord("=")) or byte == 9 else f"={byte:02X}"
    for byte in range(256)
]


def qp_escaped(text: str) -> str:
    """Text of one line as quoted-printable writes it, before any soft break."""
    return "".join(QP_BYTES[byte] for byte in text.encode("utf-8"))


# Quoted-printable lines and runs of lines by their raw bytes: the many
# contents of one morning are made of the same frame and story blocks, so
# their lines and most runs between two reader slots repeat.
_encoded_lines: dict[bytes, bytes] = {}
ENCODED_LINES_KEPT = 4096
_encoded_runs: dict[bytes, bytes] = {}
ENCODED_RUNS_KEPT = 64


def encoded_line(line: bytes) -> bytes:
    """quoted_printable_line(line) as it goes on the wire, kept for the next content."""
    encoded = _encoded_lines.get(line)
    if encoded is None:
        if len(_encoded_lines) >= ENCODED_LINES_KEPT:
            _encoded_lines.clear()
        encoded = _encoded_lines[line] = crlf(quoted_printable_line(line))
    return encoded


def is_plain(value: str) -> bool:
    """A value quoted-printable carries as it is: printable ASCII, no "=", no blank at the end."""
    return value.isascii() and value.isprintable() and "=" not in value and not value.endswith(" ")


# Slot lines by their bytes: the links and the footer are in every content.
_slot_lines: dict[tuple[str, bytes], SlotLine] = {}
SLOT_LINES_KEPT = 4096


def slot_line_of(line: bytes, slot: re.Pattern) -> SlotLine:
    """A line with reader slots, split at them, kept for the next content that has it."""
    key = (slot.pattern, line)
    slot_line = _slot_lines.get(key)
    if slot_line is None:
        parts = slot.split(line.decode("utf-8"))
        texts = parts[0::2]
        text_length = sum(len(text.encode("utf-8")) for text in texts)
        if len(_slot_lines) >= SLOT_LINES_KEPT:
            _slot_lines.clear()
        slot_line = _slot_lines[key] = SlotLine(
            parts,
            tuple(parts[1::2]),
            text_length,
            [qp_escaped(text) for text in texts],
            all(map(str.isascii, texts)),
        )
    return slot_line


class BodyTemplate:
    """A text/* part whose content has reader slots, encoded as the email package would.

    The content is held as lines. Runs of lines without slots are joined and
    encoded once; per reader only the lines with slots are filled in and
    encoded, and the runs are stitched back together.
    """

    def __init__(self, content: str, slot: re.Pattern, slot_end: str) -> None:
        """`slot` finds the reader slots; each ends in `slot_end`."""
        self.slot = slot
        lines = content.encode("utf-8").splitlines()
        self.line_count = len(lines)
        # A substring search finds the lines that may have a slot; the
        # pattern checks only those.
        marker = slot_end.encode()
        slot_numbers = [
            number
            for number, line in enumerate(lines)
            if marker in line and slot.search(line.decode("utf-8"))
        ]
        # Alternating: a run of fixed lines, then one line with slots, and so on.
        self.pieces: list[FixedRun | SlotLine] = []
        fields: set[str] = set()
        run_start = 0
        for number in slot_numbers:
            self.pieces.append(self._fixed_run(lines[run_start:number]))
            slot_line = slot_line_of(lines[number], slot)
            self.pieces.append(slot_line)
            fields.update(slot_line.fields)
            run_start = number + 1
        self.pieces.append(self._fixed_run(lines[run_start:]))
        fixed = [piece.lines for piece in self.pieces if isinstance(piece, FixedRun)]
        self.fixed_max_length = max((max(map(len, run), default=0) for run in fixed), default=0)
        self.fixed_ascii = all(line.isascii() for run in fixed for line in run)
        first_slot_line = slot_numbers[0] if slot_numbers else None
        self.fields = tuple(fields)
        self.slot_line_count = len(slot_numbers)
        # An SMTP pool's lanes (threads) assemble the same parts at once.
        self._plans: KeptRecently[tuple[int, ...], QuotedPrintablePlan] = KeptRecently(PLANS_KEPT)
        # No reader's value can make the part 7bit when its fixed lines are not.
        self.never_7bit = self.fixed_max_length > MAX_LINE or not self.fixed_ascii
        # The choice between quoted-printable and base64 reads the first
        # lines: when no reader's value is among them, it is made once.
        self.fixed_prefers_base64: bool | None = None
        if first_slot_line is None or first_slot_line >= SNIFF_LINES:
            self.fixed_prefers_base64 = self._prefers_base64(lines[:SNIFF_LINES])

    @staticmethod
    def _fixed_run(lines: list[bytes]) -> FixedRun:
        if not lines:
            return FixedRun(b"", b"", [])
        seven_bit = CRLF.join(lines) + CRLF
        encoded = _encoded_runs.get(seven_bit)
        if encoded is None:
            if len(_encoded_runs) >= ENCODED_RUNS_KEPT:
                _encoded_runs.clear()
            encoded = _encoded_runs[seven_bit] = b"".join(map(encoded_line, lines))
        return FixedRun(seven_bit, encoded, lines)

    def _filled_lines(self, values: dict[str, str]) -> list[FixedRun | list[bytes]]:
        return [
            piece if isinstance(piece, FixedRun) else self._filled(piece, values)
            for piece in self.pieces
        ]

    @staticmethod
    def _filled(piece: SlotLine, values: dict[str, str]) -> list[bytes]:
        """A slot line with the reader's values in, as the raw lines it makes."""
        parts = list(piece.parts)
        parts[1::2] = [values[field] for field in piece.fields]
        line = "".join(parts).encode("utf-8")
        # Split as the whole body would be: a value ending in a line break
        # leaves an empty line after it.
        return LINE_BREAK.split(line) if b"\n" in line or b"\r" in line else [line]

    def encode(self, values: dict[str, str]) -> tuple[str, bytes] | None:
        """(transfer encoding, payload with CRLF line ends) for these slot values.

        Mirrors email.contentmanager._encode_text under the SMTP policy: 7bit
        when every line is ASCII and short enough, otherwise quoted-printable
        or base64, whichever encodes the first lines shorter. Quoted-printable
        works line by line, so only the lines with slots are encoded here.
        """
        if self.line_count > SNIFF_LINES:  # never short: a slot line makes one line or more
            plan = self._plan(values)
            if plan.not_7bit:
                # The usual digest part: quoted-printable, unless base64 is shorter.
                prefers_base64 = self.fixed_prefers_base64
                if prefers_base64 is None:
                    prefers_base64 = plan.prefers_base64(self, values)
                if not prefers_base64:
                    return "quoted-printable", plan.fill(values)
        pieces = self._filled_lines(values)
        dynamic = [line for piece in pieces if isinstance(piece, list) for line in piece]
        if self.line_count - self.slot_line_count + len(dynamic) <= SNIFF_LINES:
            return None  # a body this short is encoded differently; not worth mirroring
        max_length = max([self.fixed_max_length, *map(len, dynamic)])
        if max_length <= MAX_LINE and self.fixed_ascii and all(map(bytes.isascii, dynamic)):
            return "7bit", b"".join(
                piece.seven_bit if isinstance(piece, FixedRun) else
                b"".join(line + CRLF for line in piece)
                for piece in pieces
            )  # fmt: skip

        prefers_base64 = self.fixed_prefers_base64
        if prefers_base64 is None:
            prefers_base64 = self._prefers_base64(self._first_lines(values))
        if prefers_base64:
            raw = [
                line
                for piece in pieces
                for line in (piece.lines if isinstance(piece, FixedRun) else piece)
            ]
            data = CRLF.join(raw) + CRLF
            step = MAX_LINE // 4 * 3
            return "base64", b"".join(
                binascii.b2a_base64(data[i : i + step]).replace(b"\n", CRLF)
                for i in range(0, len(data), step)
            )
        return "quoted-printable", b"".join(
            piece.quoted_printable if isinstance(piece, FixedRun) else
            b"".join(crlf(quoted_printable_line(line)) for line in piece)
            for piece in pieces
        )  # fmt: skip

    def _first_lines(self, values: dict[str, str]) -> list[bytes]:
        """The first lines the transfer encoding is chosen on, with the reader's values in."""
        lines: list[bytes] = []
        for piece in self.pieces:
            lines += piece.lines if isinstance(piece, FixedRun) else self._filled(piece, values)
            if len(lines) >= SNIFF_LINES:
                break
        return lines[:SNIFF_LINES]

    def _plan(self, values: dict[str, str]) -> "QuotedPrintablePlan":
        """How this reader's part is assembled quoted-printable: the plan for their values' lengths.

        Plain values (is_plain) change nothing in quoted-printable, so where a
        line's soft breaks fall depends only on their lengths: readers whose
        values have the same lengths share one plan. The few most recent
        plans are kept (most readers share a handful).
        """
        signature = tuple(
            len(value) if is_plain(value := values[field]) else -1 for field in self.fields
        )
        lengths = dict(zip(self.fields, signature, strict=True))
        return self._plans.get(signature, lambda: QuotedPrintablePlan(self, lengths))

    @staticmethod
    def _prefers_base64(first_lines: list[bytes]) -> bool:
        linesep = POLICY.linesep.encode("ascii")
        sniff = linesep.join(first_lines) + linesep
        sniff_qp = body_encode(sniff.decode("latin-1"), MAX_LINE)
        return len(sniff_qp) > len(binascii.b2a_base64(sniff))


PLANS_KEPT = 8
# What stands in a plan's prototype line for each value: one character per
# character of the value, never "=" (all that soft breaks look at).
VALUE_MARK = 0xE000

# A plan's segments: encoded bytes as they are; (field, start, end), a slice
# of the reader's value; or a slot line encoded per reader (a value that is
# not plain).
Segment = bytes | tuple[str, int, int] | SlotLine


# Slot lines' segments by their text and their values' lengths: the same
# links and footer lines are in every content of an edition.
_line_segments: dict[tuple[tuple[str, ...], tuple[int, ...]], list[Segment] | None] = {}
LINE_SEGMENTS_KEPT = 4096
_NOT_LAID_OUT: list[Segment] = []  # not yet in _line_segments (None there: encode per reader)


def line_segments(piece: SlotLine, lengths: tuple[int, ...]) -> list[Segment] | None:
    """A slot line quoted-printable for plain values of these lengths; None: encode per reader.

    The line is laid out with a mark character for each character of each
    value and cut with soft breaks as quoted-printable cuts it (the marks
    are never "=", all that the cuts look at); each run of marks then
    stands for a slice of that value.
    """
    key = (tuple(piece.parts), lengths)
    # One lookup: another lane (thread) may clear the dict between two.
    known = _line_segments.get(key, _NOT_LAID_OUT)
    if known is not _NOT_LAID_OUT:
        return known
    if len(_line_segments) >= LINE_SEGMENTS_KEPT:
        _line_segments.clear()
    texts_after = piece.escaped[1:]
    prototype = piece.escaped[0] + "".join(
        chr(VALUE_MARK + number) * length + text
        for number, (length, text) in enumerate(zip(lengths, texts_after, strict=True))
    )
    if prototype.endswith((" ", "\t")):  # written at the end of a line as =20, =09
        _line_segments[key] = None
        return None
    if len(prototype) > MAX_LINE:
        prototype = soft_broken(prototype, "\r\n")
    segments: list[Segment] = []
    literal: list[str] = []  # encoded text since the last value
    taken = [0] * len(lengths)  # how much of each value is placed
    for character, run in itertools.groupby(prototype + "\r\n"):
        count = len(list(run))
        number = ord(character) - VALUE_MARK
        if 0 <= number < len(lengths):
            if literal:
                segments.append("".join(literal).encode("ascii"))
                literal.clear()
            start = taken[number]
            segments.append((piece.fields[number], start, start + count))
            taken[number] += count
        else:
            literal.append(character * count)
    segments.append("".join(literal).encode("ascii"))
    _line_segments[key] = segments
    return segments


class QuotedPrintablePlan:
    """A part's quoted-printable bytes for readers whose plain values have these lengths."""

    def __init__(self, body: BodyTemplate, lengths: dict[str, int]) -> None:
        # Not the body itself: it keeps its plans, and a cycle would keep a
        # content's pieces until the garbage collector's next full pass.
        self.fields = body.fields
        # Too long (or not ASCII) for 7bit whatever the values that are not plain.
        self.not_7bit = body.never_7bit
        self.all_plain = min(lengths.values(), default=0) >= 0
        self._prefers_base64: bool | None = None
        self.segments: list[Segment] = []
        for piece in body.pieces:
            if isinstance(piece, FixedRun):
                if piece.quoted_printable:
                    self.segments.append(piece.quoted_printable)
                continue
            line_lengths = tuple(lengths[field] for field in piece.fields)
            if min(line_lengths) < 0:
                self.segments.append(piece)  # encoded per reader
                continue
            if piece.text_length + sum(line_lengths) > MAX_LINE or not piece.ascii:
                self.not_7bit = True
            segments = line_segments(piece, line_lengths)
            if segments is None:
                self.segments.append(piece)
            else:
                self.segments += segments

    def prefers_base64(self, body: BodyTemplate, values: dict[str, str]) -> bool:
        """Whether base64 encodes the part's first lines shorter, with these values in.

        With every value plain the answer is the same for every reader of
        this plan (quoted-printable changes nothing in the values, and the
        lengths are the same), so it is worked out once.
        """
        if self._prefers_base64 is not None:
            return self._prefers_base64
        choice = BodyTemplate._prefers_base64(body._first_lines(values))
        if self.all_plain:
            self._prefers_base64 = choice
        return choice

    def fill(self, values: dict[str, str]) -> bytes:
        """The part's payload with this reader's values in."""
        encoded = {field: values[field].encode("ascii", "replace") for field in self.fields}
        out: list[bytes] = []
        for segment in self.segments:
            if isinstance(segment, bytes):
                out.append(segment)
            elif isinstance(segment, SlotLine):
                lines = BodyTemplate._filled(segment, values)
                out.extend(crlf(quoted_printable_line(line)) for line in lines)
            else:
                field, start, end = segment
                out.append(encoded[field][start:end])
        return b"".join(out)


def crlf(encoded_line: str) -> bytes:
    """An encoded line (soft breaks as "\\n") as it goes on the wire, ending in CRLF."""
    return encoded_line.replace("\n", "\r\n").encode("ascii") + CRLF


# What the prototype message carries in place of the digest's text and HTML.
PROTOTYPE_BODY = "prototype"
# The headers a reader's message has of its own: slots in a MessageCut.
READER_HEADERS = {b"to", b"date", b"message-id", b"list-unsubscribe"}


@dataclass(frozen=True)
class MessageCut:
    """A digest message's bytes but its bodies, cut where each reader's headers go."""

    boundary: str
    # Each header's bytes, or the name of a reader's own (READER_HEADERS).
    header_pieces: list[bytes | str]
    preamble: bytes
    epilogue: bytes
    # Each part's head: its headers' bytes, "cte" where its transfer encoding goes.
    part_heads: list[list[bytes | str]]


# Cuts by what they are made of: the many contents of one morning (zones,
# sections, formats) differ in their bodies, rarely in their headers.
_cuts: dict[tuple[object, ...], MessageCut] = {}
CUTS_KEPT = 64


def message_cut(message: DigestMessage) -> MessageCut:
    """The cut of a prototype reader's message: serialised once per set of headers.

    Only the headers and the parts' heads are cut (the bodies are encoded
    from the digest's text and HTML by BodyTemplate), and neither depends on
    the bodies but for the transfer encoding, which is a slot: so the
    prototype carries one-word bodies, and contents whose headers are the
    same share one cut (their boundary too, as one content's readers do).
    """
    shared_headers = {
        name: value
        for name, value in message.extra_headers.items()
        if name.lower().encode() not in READER_HEADERS
    }
    key = (
        message.subject,
        message.from_email,
        tuple(message.reply_to),
        tuple(message.cc),
        tuple(message.bcc),
        tuple(sorted(shared_headers.items())),
        message.encoding or settings.DEFAULT_CHARSET,
        message.content_subtype,
        tuple(mimetype for _content, mimetype in message.alternatives),
        bool(message.attachments),
    )
    cut = _cuts.get(key)
    if cut is None:
        if len(_cuts) >= CUTS_KEPT:
            _cuts.clear()
        cut = _cuts[key] = _cut(message)
    return cut


def _cut(message: DigestMessage) -> MessageCut:
    message.body = PROTOTYPE_BODY
    message.alternatives = [
        EmailAlternative(PROTOTYPE_BODY, mimetype) for _content, mimetype in message.alternatives
    ]
    boundary = f"===============fast{secrets.token_hex(6)}=="
    mime = message.message(policy=POLICY)
    mime.set_boundary(boundary)
    head, _, body = mime.as_bytes().partition(b"\r\n\r\n")
    # Header block: keep every header but the per-reader ones, in order.
    header_pieces: list[bytes | str] = []
    for field in re.split(rb"\r\n(?! )", head):
        name = field.split(b":", 1)[0].lower()
        header_pieces.append(name.decode() if name in READER_HEADERS else field + b"\r\n")
    separator = b"--" + boundary.encode()
    preamble, text_part, html_part, epilogue = body.split(separator)
    part_heads: list[list[bytes | str]] = []
    for part in (text_part, html_part):
        part_head = part.partition(b"\r\n\r\n")[0]
        fields = re.split(rb"\r\n(?! )", part_head.removeprefix(b"\r\n"))
        part_heads.append([
            "cte" if field.lower().startswith(b"content-transfer-encoding:") else field + b"\r\n"
            for field in fields
        ])  # fmt: skip
    return MessageCut(boundary, header_pieces, preamble, epilogue, part_heads)


# List-Unsubscribe headers folded, by the lengths of the link and the address.
_unsubscribe_folds: dict[tuple[int, int], tuple[str, str, str]] = {}
UNSUBSCRIBE_FOLDS_KEPT = 256


# Parts by their content: the mornings of one day share their contents (the
# "Since" line is a reader slot), so each is laid out once per process.
BODY_TEMPLATES_KEPT = 128
_body_templates: KeptRecently[tuple[str, str], BodyTemplate] = KeptRecently(BODY_TEMPLATES_KEPT)


def body_template(content: str, slot: re.Pattern, slot_end: str) -> BodyTemplate:
    """The BodyTemplate of a part with this content, laid out on first use and kept."""
    return _body_templates.get(
        (content, slot.pattern), lambda: BodyTemplate(content, slot, slot_end)
    )


class FastDigest:
    """The bytes of one edition's digest for many readers, assembled from pieces."""

    def __init__(self, digest: DigestTemplate) -> None:
        # Weakly: the digest is this FastDigest's key in _fast_digests, which a
        # strong reference would keep alive for the life of the process.
        self._digest = weakref.ref(digest)
        nonce = secrets.token_hex(6)
        prototype_reader = Subscriber(pk=0, email=f"prototype-{nonce}@example.invalid")
        # No membership (no notice): known to be none, or reading it costs a query per content.
        Subscriber._meta.get_field("membership").set_cached_value(prototype_reader, None)
        message = digest.message_for(prototype_reader)
        cut = message_cut(message)
        self.boundary = cut.boundary
        self.header_pieces = cut.header_pieces
        self.preamble, self.epilogue = cut.preamble, cut.epilogue
        self.parts: list[tuple[list[bytes | str], BodyTemplate]] = [
            (head, body_template(content, digest._slot, digest.slot_end))
            for head, content in zip(cut.part_heads, (digest.text, digest.html), strict=True)
        ]

    def _list_unsubscribe(self, link: str, mailto: str) -> bytes | None:
        # Folding depends only on the lengths of the two whitespace-separated
        # words; the link's and the address's lengths vary with the reader's
        # id. Fold once per pair of lengths, for every content.
        lengths = (len(link), len(mailto))
        cached = _unsubscribe_folds.get(lengths)
        if cached is None:
            value = list_headers(link, mailto)["List-Unsubscribe"]
            folded = POLICY.header_factory("List-Unsubscribe", value).fold(policy=POLICY)
            if "=?" in folded:
                return None  # too long to fold at whitespace; let Django do it
            if len(_unsubscribe_folds) >= UNSUBSCRIBE_FOLDS_KEPT:
                _unsubscribe_folds.clear()
            cached = _unsubscribe_folds[lengths] = (folded, link, mailto)
        folded, cached_link, cached_mailto = cached
        return folded.replace(cached_link, link).replace(cached_mailto, mailto).encode("ascii")

    def bytes_for(self, subscriber: Subscriber, message_id: str) -> bytes | None:
        """The reader's message, or None when it needs Django's path."""
        name = single_line(subscriber.name)
        if not PLAIN_NAME.fullmatch(name) or not PLAIN_ADDRESS.fullmatch(subscriber.email):
            return None
        to = formataddr((name, subscriber.email))
        to_line = f"To: {to}\r\n"
        if len(to_line) > MAX_LINE + 2:
            return None
        digest = self._digest()
        assert digest is not None, "a FastDigest is used through its digest (fast_digest)"
        values, html_values = digest.reader_values(subscriber)
        link = values["unsubscribe_url"]
        list_unsubscribe = self._list_unsubscribe(link, unsubscribe_mailto(subscriber.pk))
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
            out += [cte_line if isinstance(piece, str) else piece for piece in part_head]
            out += [b"\r\n", payload, b"\r\n"]
        out += [b"--", self.boundary.encode(), self.epilogue]
        return b"".join(out)


# Each rendered digest's pre-serialised message, for as long as the digest is
# kept (delivery.batches keeps a worker's renders): built on first use, and
# only by the SMTP fast path, which the digest itself knows nothing of.
_fast_digests: weakref.WeakKeyDictionary[DigestTemplate, FastDigest] = weakref.WeakKeyDictionary()


def fast_digest(digest: DigestTemplate) -> FastDigest:
    """The FastDigest of a rendered digest, built once and kept while the digest is."""
    fast = _fast_digests.get(digest)
    if fast is None:
        fast = _fast_digests[digest] = FastDigest(digest)
    return fast


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
