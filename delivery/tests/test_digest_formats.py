"""The digest's two formats: full (each story whole) and headlines, and the clipping limit.

Gmail clips a message past 102 KB, hiding the rest, footer and unsubscribe
link included: a full digest's HTML stays under CLIP_LIMIT, the stories
past it falling back to headlines, and the digest says so.
"""

import pytest
from django.template.loader import render_to_string

from delivery import batches, emails
from delivery.emails import CLIP_LIMIT, DigestTemplate
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

NOTE = "The rest of this digest is headlines only"


def long_body(number: int, paragraphs: int = 40) -> str:
    sentence = f"Paragraph of story {number}, long enough to weigh on the message. " * 8
    return "".join(f"<p>{sentence}</p>" for _ in range(paragraphs))


def test_a_full_digest_past_the_clipping_limit_falls_back_to_headlines_and_says_so():
    # Six stories of about 30 KB each: three fit under the limit, not all six.
    section = make_section(name="World")
    articles = [
        make_article(title=f"Story {n}", section=section, body=long_body(n)) for n in range(6)
    ]
    edition = built_edition(MONDAY)
    reader = make_subscriber("ada@example.com")

    digest = DigestTemplate(edition, articles)
    message = digest.message_for(reader)
    html = message.html

    assert len(html.encode()) <= CLIP_LIMIT
    assert 0 < digest.whole < len(articles)
    for number in range(6):
        whole = f"Paragraph of story {number}," in html
        assert whole == (number < digest.whole), number
    # The note comes once, just before the first story cut to its headline.
    assert html.count(NOTE) == 1 and message.body.count(NOTE) == 1
    assert html.index(NOTE) < html.index(f">Story {digest.whole}</a>")
    assert html.index(f">Story {digest.whole - 1}</a>") < html.index(NOTE)
    # The footer, with its unsubscribe link, is inside the limit.
    assert "Unsubscribe</a>" in html


def test_a_full_digest_under_the_limit_carries_every_story_whole_without_the_note():
    articles = [make_article(title=f"Story {n}", body=long_body(n, 4)) for n in range(5)]
    edition = built_edition(MONDAY)

    digest = DigestTemplate(edition, articles)

    assert digest.whole == 5
    assert NOTE not in digest.html
    assert all(f"Paragraph of story {n}," in digest.html for n in range(5))


def test_headlines_carry_no_story_text_whatever_its_length():
    articles = [make_article(title=f"Story {n}", body=long_body(n)) for n in range(6)]
    edition = built_edition(MONDAY)

    digest = DigestTemplate(edition, articles, digest_format="headlines")

    assert digest.whole == 0
    assert "Paragraph of story" not in digest.html + digest.text
    assert digest.html.count("Read the full story") == 6
    assert NOTE not in digest.html


def test_the_header_names_the_readers_sections_with_a_link_to_change_them(settings):
    make_article(title="Story")
    edition = built_edition(MONDAY)
    reader = make_subscriber("ada@example.com")

    message = DigestTemplate(
        edition, list(edition.ordered_articles()), sections=("World", "Business"), others=3
    ).message_for(reader)

    assert "Your sections: World, Business · full stories" in message.body
    assert "3 more stories in sections you don't follow" in message.body
    header = message.html[message.html.index("Your sections: World, Business") :]
    link = f'href="{settings.SITE_URL}/preferences/'
    assert header[: header.index("</p>")].count(link) == 1


def test_each_story_block_is_rendered_once_per_edition_and_format_whatever_the_contents():
    world, sport = make_section(name="World"), make_section(name="Sport")
    articles = [
        make_article(title="One", section=world),
        make_article(title="Two", section=sport),
        make_article(title="Three"),
    ]
    edition = built_edition(MONDAY)
    before = emails.block_renders

    # Sixteen contents: four "since" lines, two section sets, two formats.
    contents = [
        DigestTemplate(
            edition,
            stories,
            since=f"Since {day} 06:00 GMT",
            digest_format=digest_format,
            sections=sections,
        )
        for day in ("Monday", "Tuesday", "Wednesday", "Thursday")
        for sections, stories in [(None, articles), (("World",), [articles[0], articles[2]])]
        for digest_format in ("full", "headlines")
    ]

    # Three stories, each as a headline and whole: six blocks, whatever the contents.
    assert emails.block_renders - before == 6
    # The "since" line is each reader's slot: the four mornings share their
    # two section sets' and two formats' four contents, and each reader's
    # copy says their own.
    assert len({content.html for content in contents}) == 4
    reader = make_subscriber("ada@example.com")
    for content in contents:
        assert content.html.count('class="story"') == len(content.articles)
        message = content.message_for(reader)
        assert f"· {content.since}" in message.body
        assert f"· {content.since}</p>" in message.html


def test_a_worker_keeps_its_most_recently_used_renders_and_lets_the_oldest_go(monkeypatch):
    monkeypatch.setattr(batches._rendered, "size", 3)
    make_article(title="One")
    edition = built_edition(MONDAY)

    def render(day: str) -> DigestTemplate:
        return batches.digest_template(edition, since=f"Since {day} 06:00 GMT")

    monday, tuesday = render("Monday"), render("Tuesday")
    render("Wednesday")
    assert render("Monday") is monday  # used again: now the most recent
    render("Thursday")  # one too many: Tuesday, the least recently used, goes

    assert render("Monday") is monday
    assert render("Tuesday") is not tuesday
    assert len(batches._rendered) == 3


@pytest.mark.parametrize("digest_format", ["full", "headlines"])
@pytest.mark.parametrize("others", [0, 1, 4])
def test_a_contents_labels_in_its_shared_frame_read_as_if_rendered_in(digest_format, others):
    # The frame is rendered and inlined once per edition and format with
    # marks, and each content's labels go in afterwards: they must come out
    # as the templates and the CSS inliner would have written them, whatever
    # characters the labels hold.
    make_article(title="Story")
    edition = built_edition(MONDAY)
    edition.editor_note = "Rivers & “treaties” <b>bold</b> 'quoted' \"double\" a\xa0b"
    sections = ("Arts & Letters", "<Tech>", 'Mum\'s "pick"')
    since = "Since Friday 06:00 in Lisbon (WET) & <elsewhere>"

    content = DigestTemplate(
        edition, [], since, digest_format=digest_format, sections=sections, others=others
    )

    context = emails.frame_context(
        edition,
        digest_format,
        since=since,
        sections_label=", ".join(sections),
        preheader=content.preheader,
        others=bool(others),
        others_label=f"{others} more {'story' if others == 1 else 'stories'}",
        has_stories=False,
    )
    # The "since" line is a reader's slot: filled in as a reader's copy is
    # (the other slots left as the templates write them).
    values, html_values = content.reader_values(make_subscriber("ada@example.com"))
    slots = {field: emails.reader_slot(field) for field in emails.READER_FIELDS}
    html = content._fill(content._html_parts, {**slots, "since": html_values["since"]})
    text = content._fill(content._text_parts, {**slots, "since": values["since"]})
    assert html == emails.INLINER.inline(render_to_string("emails/digest.html", context))
    assert text == render_to_string("emails/digest.txt", context)
    assert 'Arts &amp; Letters, &lt;Tech&gt;, Mum\'s "pick"' in content.html
    if others:
        assert f"{others} more {'story' if others == 1 else 'stories'}" in content.text
