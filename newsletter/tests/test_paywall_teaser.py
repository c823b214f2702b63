"""The paywall's teaser is a real cut that keeps paragraphs; editors can make an article free."""

import pytest

from newsletter.html import teaser_html
from newsletter.tests.factories import make_article
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


def test_a_short_article_is_cut_not_shown_whole(client):
    # As the demo's: one short paragraph of 27 words.
    article = make_article(body=f"<p>{words('w', 27)}.</p>")

    page = client.get(article.get_absolute_url()).content.decode()

    assert "w0 w1" in page
    assert "w26" not in page
    assert "Read the whole story with a membership" in page


def test_the_teaser_keeps_whole_paragraphs_up_to_a_share_of_the_text():
    body = (
        f"<p>{words('a', 20)}</p><p>{words('b', 15)}</p>"
        f"<h2>Later</h2><p>{words('c', 40)}</p><p>{words('d', 40)}</p>"
    )

    teaser = teaser_html(body)

    # 116 words, a share of 0.3 is 34: the first paragraph only (35 with the second).
    assert teaser == f"<p>{words('a', 20)}</p>"


def test_two_short_paragraphs_stay_two_paragraphs():
    body = f"<p>{words('a', 10)}</p><p>{words('b', 10)}</p>" + f"<p>{words('c', 60)}</p>"

    assert teaser_html(body) == f"<p>{words('a', 10)}</p>\n<p>{words('b', 10)}</p>"


def test_a_long_first_paragraph_is_cut_at_a_word_and_keeps_its_markup():
    body = f'<p>Start <a href="https://example.com/x">the link</a> {words("w", 400)}</p>'

    teaser = teaser_html(body)

    assert teaser.startswith('<p>Start <a href="https://example.com/x" rel="noopener noreferrer">')
    assert teaser.endswith(" …</p>")
    assert len(teaser.split()) < 130  # at most 120 words


def test_an_article_free_to_read_is_whole_for_everyone_and_says_so(client):
    article = make_article(body=f"<p>{words('w', 27)}.</p><p>The ending.</p>", free_to_read=True)

    page = client.get(article.get_absolute_url()).content.decode()

    assert "The ending." in page
    assert "Free to read" in page
    assert "Read the whole story with a membership" not in page
