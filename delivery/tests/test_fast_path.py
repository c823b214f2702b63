"""The fast path sends byte for byte what Django's own path would.

Apart from what differs between any two sends of the same email: the Date,
the Message-ID and the random MIME boundary.
"""

import datetime
import email.policy
import gc
import re
import sys
import threading
import weakref
from email.quoprimime import body_encode
from typing import Required, TypedDict

import pytest

from delivery import by_hand
from delivery.emails import DigestTemplate
from delivery.models import Delivery
from delivery.wire import mime
from delivery.wire.mime import FastDigest, new_message_id
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def normalise(data: bytes) -> bytes:
    match = re.search(rb'boundary="([^"]+)"', data)
    assert match is not None
    boundary = match.group(1)
    data = data.replace(boundary, b"BOUNDARY")
    data = re.sub(rb"\r\nDate: [^\r]*", b"", data)
    return re.sub(rb"\r\nMessage-ID: [^\r]*", b"", data)


def django_bytes(template: DigestTemplate, reader: Subscriber) -> bytes:
    # What django.core.mail.backends.smtp.EmailBackend hands to smtplib.
    return template.message_for(reader).message(policy=email.policy.SMTP).as_bytes()


class ReaderSpec(TypedDict, total=False):
    email: Required[str]
    name: str
    membership: str


READERS: list[ReaderSpec] = [
    {"email": "plain@example.com"},
    {"email": "named@example.com", "name": "Ada Lovelace"},
    {"email": "o.brien+news@example.co.uk", "name": "Liam O'Brien"},
    # "=" in a reader's value: quoted-printable escapes it (the line's slow path).
    {"email": "equals@example.com", "name": "Ada=Byron"},
    {"email": "long@example.com", "name": "A Name Long Enough To Push The To Header Past The Fold"},
    {"email": "accent@example.com", "name": "José Núñez"},
    {"email": "quoted@example.com", "name": "Smith, John (Jr.)"},
    {"email": "ünicode@bücher.example", "name": "Ümlaut"},
    {"email": "trial@example.com", "membership": Membership.Status.TRIALING},
    {"email": "late@example.com", "name": "Late Payer", "membership": Membership.Status.PAST_DUE},
]


@pytest.fixture
def readers():
    made = []
    for spec in READERS:
        membership = spec.get("membership", Membership.Status.ACTIVE)
        reader = make_subscriber(spec["email"], membership=membership, name=spec.get("name", ""))
        if membership == Membership.Status.TRIALING:
            Membership.objects.filter(subscriber=reader).update(
                trial_end=datetime.datetime(2026, 12, 10, 15, tzinfo=datetime.UTC)
            )
        made.append(reader)
    return list(Subscriber.objects.select_related("membership").order_by("pk"))


@pytest.mark.parametrize(
    "articles",
    [
        # Plain ASCII: the text part may be 7bit.
        [{"title": "Short", "dek": "Brief."}],
        # Long lines and typographic punctuation: quoted-printable.
        [
            {"title": "Rivers & treaties — a “long” road", "dek": "Café talks " * 12},
            {"title": "Second story", "dek": "x" * 90},
        ],
        # Mostly non-Latin text: base64 wins the size comparison.
        [{"title": "日本語のニュース" * 6, "dek": "東京で会議が開かれた。" * 12}],
    ],
    ids=["ascii", "quoted-printable", "base64"],
)
def test_fast_bytes_equal_djangos_for_every_kind_of_reader(readers, articles):
    section = make_section(name="Welt & Wissen")
    made = [make_article(section=section, **spec) for spec in articles]
    edition = built_edition(MONDAY)
    template = DigestTemplate(edition, made)
    fast = FastDigest(template)

    assembled = 0
    for reader in readers:
        data = fast.bytes_for(reader, new_message_id())
        if data is None:
            continue  # this reader goes through Django's path
        assembled += 1
        assert normalise(data) == normalise(django_bytes(template, reader)), reader.email

    # Everyone with a plain ASCII name and address takes the fast path.
    assert assembled == 7


def test_readers_the_fast_path_cannot_assemble_are_named(readers):
    make_article()
    edition = built_edition(MONDAY)
    template = DigestTemplate(edition, list(edition.ordered_articles()))
    fast = FastDigest(template)
    slow = {r.email for r in readers if fast.bytes_for(r, new_message_id()) is None}
    assert slow == {"accent@example.com", "quoted@example.com", "ünicode@bücher.example"}


def test_received_emails_are_the_same_with_and_without_the_fast_path(
    smtp_server, readers, monkeypatch
):
    make_article(title="Rivers & treaties — a “long” road", dek="Café talks " * 12)
    edition = built_edition(MONDAY)
    by_hand.send_edition_in_process(edition.pk)
    fast_run = {mail.rcpt_tos[0]: mail.data for mail in smtp_server.received()}

    # The same edition again, every reader through Django's own path.
    monkeypatch.setattr(mime.FastDigest, "bytes_for", lambda self, reader, message_id: None)
    Delivery.objects.filter(status=Delivery.Status.SENT).update(status=Delivery.Status.QUEUED)
    smtp_server.clear_received()
    by_hand.send_edition_in_process(edition.pk)
    slow_run = {mail.rcpt_tos[0]: mail.data for mail in smtp_server.received()}

    # The reader whose address has a non-ASCII local part cannot be sent to
    # without SMTPUTF8: recorded as failed, on both paths, without harm to others.
    expected = {r.email for r in readers if r.email.isascii() and r.is_entitled}
    assert set(fast_run) == set(slow_run) == expected
    for address, data in fast_run.items():
        assert normalise(data.encode()) == normalise(slow_run[address].encode()), address
    failed = Delivery.objects.get(subscriber__email="ünicode@bücher.example")
    assert failed.status == Delivery.Status.FAILED
    assert "non-ASCII" in failed.last_error or "ascii" in failed.last_error.lower()


# Each kind of content readers' choices make: the sections followed, the
# format, lead stories and stories with no section, nothing new, a full
# digest past the clipping limit.
LONG_BODY = "".join(f"<p>Paragraph {n}: “quoted” words — and more words.</p>" for n in range(800))


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("every section, full", {}),
        ("every section, headlines", {"digest_format": "headlines"}),
        ("sections, full, others left out", {"sections": ("World",), "others": 2}),
        ("sections, headlines", {"sections": ("World", "Business"), "digest_format": "headlines"}),
        ("nothing new (sent when empty)", {"sections": ("Sport",), "others": 3, "empty": True}),
        ("full past the clipping limit", {"long": True}),
    ],
)
def test_fast_bytes_equal_djangos_for_every_combination_kind(readers, kind, options):
    world = make_section(name="World")
    sport = make_section(name="Sport")
    body = LONG_BODY if options.get("long") else "<p>A body — with “quotes”.</p><p>Two.</p>"
    made = [
        make_article(title="Lead story", section=sport, body=body),
        make_article(title="World story", section=world, body=body),
        make_article(title="No section", section=None, body=body),
    ]
    edition = built_edition(MONDAY)
    articles = [] if options.get("empty") else made
    template = DigestTemplate(
        edition,
        articles,
        digest_format=options.get("digest_format", "full"),
        sections=options.get("sections"),
        others=options.get("others", 0),
    )
    if options.get("long"):
        assert 0 < template.whole < len(articles), kind
    fast = FastDigest(template)

    assembled = 0
    for reader in readers:
        data = fast.bytes_for(reader, new_message_id())
        if data is None:
            continue
        assembled += 1
        assert normalise(data) == normalise(django_bytes(template, reader)), (kind, reader.email)
    assert assembled == 7


@pytest.mark.parametrize("digest_format", ["full", "headlines"])
def test_the_mornings_of_a_day_share_one_content_and_each_reader_reads_their_own_since_line(
    readers, digest_format
):
    # The "Since" line is a reader slot: the zones' and delivery times'
    # mornings with the same stories share their parts, laid out once, and
    # each copy is still byte for byte Django's with its own line.
    make_article(title="Story", body="<p>A body — with “quotes”.</p>")
    edition = built_edition(MONDAY)
    articles = list(edition.ordered_articles())
    labels = ["Since Friday 06:00 CET", "Since Friday 06:30 +1345", "Since Thursday 07:00 HST"]
    templates = [
        DigestTemplate(edition, articles, since, digest_format=digest_format) for since in labels
    ]
    fasts = [FastDigest(template) for template in templates]

    assert len({id(body) for fast in fasts for _head, body in fast.parts}) == 2
    for template, fast in zip(templates, fasts, strict=True):
        for reader in readers:
            data = fast.bytes_for(reader, new_message_id())
            if data is None:
                continue
            assert template.since.encode() in data
            assert normalise(data) == normalise(django_bytes(template, reader)), template.since
    # The dateline ("·" and the slot) is laid out once, not encoded per reader.
    plans = [plan for fast in fasts for _h, body in fast.parts for plan in body._plans]
    plain = [plan for plan in plans if plan.all_plain]
    assert plain
    assert not any(isinstance(s, mime.SlotLine) for plan in plain for s in plan.segments)


SLOTS = re.compile(r"__(a|b)__")


@pytest.mark.parametrize(
    "text",
    [
        "Monday 7 December 2026 · __a__ and __b__",  # the dateline: "Since …" is a slot
        "tab\there __a__=__b__ é",
        "x" * 70 + "é__a__·" + "=" * 5 + "__b__ end",
    ],
)
def test_a_slot_line_of_any_text_is_laid_out_once_and_filled_as_the_email_package_encodes_it(
    text,
):
    # Not only printable ASCII: a line with "·" or "é" between its slots is
    # laid out once per set of value lengths too, soft breaks kept clear of
    # each "=XX", and filled per reader by slicing.
    assert mime.qp_escaped("a=b\t·") == "a=3Db\t=C2=B7"
    piece = mime.slot_line_of(text.encode(), SLOTS)
    for a_length in range(0, 90, 7):
        for b_length in (1, 5, 40):
            values = {"a": "A" * a_length, "b": "b" * b_length}
            segments = mime.line_segments(piece, (a_length, b_length))
            assert segments is not None
            filled = text.replace("__a__", values["a"]).replace("__b__", values["b"])
            expected = body_encode(filled.encode().decode("latin-1"), mime.MAX_LINE, "\r\n")
            assembled = b""
            for segment in segments:
                if isinstance(segment, bytes):
                    assembled += segment
                else:
                    assert not isinstance(segment, mime.SlotLine)  # every value is plain
                    field, start, end = segment
                    assembled += values[field][start:end].encode()
            assert assembled == expected.encode() + b"\r\n", (a_length, b_length)


def test_long_lines_are_soft_broken_where_the_email_package_breaks_them():
    # Lines of every length around the limit, with "=" (three characters
    # encoded) at every place a cut could fall inside an escape.
    lines = [
        "a" * length + "=" * equals + "b" * tail
        for length in range(60, 160, 7)
        for equals in range(0, 4)
        for tail in range(0, 80, 13)
    ] + ["https://example.com/read?token=" + "x=y&" * n for n in range(10, 60)]
    for line in lines:
        assert mime.quoted_printable_line(line.encode()) == body_encode(line, mime.MAX_LINE), line


def test_a_digest_the_worker_lets_go_of_is_freed_with_its_fast_path():
    # A worker keeps a bounded number of renders (delivery.batches); the fast
    # path's pieces of one it dropped must go with it, or every content of
    # every morning would stay in the worker's memory.
    make_article()
    edition = built_edition(MONDAY)
    template = DigestTemplate(edition, list(edition.ordered_articles()))
    assert mime.fast_digest(template) is mime.fast_digest(template)
    dropped = weakref.ref(template)
    del template
    gc.collect()
    assert dropped() is None


def test_a_dropped_digests_pieces_are_freed_at_once_not_at_the_next_full_collection(readers):
    # Its pieces (each part's lines, encoded once, and the plans readers are
    # assembled from) are most of a worker's memory: a reference cycle would
    # keep every content of a morning until the collector's rare full pass.
    # Parts are kept by their content (a morning's zones share them) until
    # the least recently used is let go: then they go at once.
    make_article()
    edition = built_edition(MONDAY)
    template = DigestTemplate(edition, list(edition.ordered_articles()))
    fast = mime.fast_digest(template)
    assert fast.bytes_for(readers[0], new_message_id()) is not None
    parts = [weakref.ref(body) for _head, body in fast.parts]
    gc.disable()
    try:
        del template, fast
        assert all(part() is not None for part in parts)  # kept for the next content
        mime._body_templates.clear()
        assert [part() for part in parts] == [None, None]
    finally:
        gc.enable()


def test_a_pools_lanes_assembling_one_part_at_once_never_trip_over_its_kept_plans():
    # An SMTP pool's lanes are threads sharing each content's parts: their
    # plans, kept a few at a time, are taken and let go from every lane.
    # Thread switches forced as often as the interpreter allows.
    body = mime.BodyTemplate(
        "\n".join(["line " * 10] * 20 + ["x __a__ y __b__"] + ["z" * 50] * 20),
        re.compile(r"__(a|b)__"),
        "__",
    )
    errors: list[BaseException] = []

    def assemble(lane: int) -> None:
        try:
            for n in range(2000):  # more value lengths than PLANS_KEPT, in every lane
                body._plan({"a": "A" * ((n * 7 + lane) % 20), "b": "b"})
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        lanes = [threading.Thread(target=assemble, args=(lane,)) for lane in range(8)]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(body._plans) == mime.PLANS_KEPT
