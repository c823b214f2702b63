"""Sanitising editor HTML.

Article bodies are written by staff but end up in readers' browsers and
mail clients, so they are cleaned to a small set of tags and attributes:
no scripts, event handlers, styles or javascript: links can get through.

There is one allow-list, used on save (Article.save and the form field),
on render (the `sanitized` template filter) and, through EDITOR_EXTENSIONS,
to configure the rich-text editor so that what editors can produce is what
survives cleaning.
"""

import html
import re
from html.parser import HTMLParser

import nh3
from django.utils.html import strip_tags
from django.utils.text import Truncator

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "strong", "em", "b", "i", "u", "s",
    "a", "ul", "ol", "li", "blockquote", "figure", "figcaption",
    "img", "hr", "code", "pre", "sub", "sup",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start", "type"},
}
URL_SCHEMES = {"http", "https", "mailto"}

# django-prose-editor's extensions (Tiptap), limited to what ALLOWED_TAGS
# keeps. The page title is the article's h1, so bodies start at h2; links
# open in the same tab (no target) and only to web and mail addresses.
EDITOR_EXTENSIONS = {
    "Bold": True,
    "Italic": True,
    "Underline": True,
    "Strike": True,
    "Subscript": True,
    "Superscript": True,
    "Heading": {"levels": [2, 3, 4]},
    "BulletList": True,
    "OrderedList": True,
    "ListItem": True,
    "Blockquote": True,
    "HorizontalRule": True,
    "HardBreak": True,
    # autolink off: Tiptap makes the link mark "inclusive" when autolink is on,
    # so a "." or a word typed right after a link became part of it. Links
    # are made with the toolbar's link button.
    "Link": {"enableTarget": False, "protocols": sorted(URL_SCHEMES), "autolink": False},
    # The HTML source view, for the odd fix the toolbar cannot make: what is
    # typed there is cleaned like everything else.
    "HTML": True,
}
# Attributes the editor writes that cleaning replaces or drops on purpose:
# rel is set to "noopener noreferrer" on every link by nh3, data-type is an
# editor-internal marker of ordered lists.
EDITOR_ATTRIBUTES_DROPPED = {"rel", "data-type"}

_EMPTY = re.compile(r"^\s*(<p>\s*(<br>)?\s*</p>\s*)*$")


def clean_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def clean_editor_html(html: str) -> str:
    """clean_html, and an editor's empty paragraph becomes an empty string.

    ProseMirror always keeps one paragraph, so an "empty" body arrives as
    <p></p>; making it "" lets the required-field check see it is empty.
    """
    cleaned = clean_html(html)
    return "" if _EMPTY.match(cleaned) else cleaned


# The paywall's teaser: the article's opening blocks, up to this share of its
# words and at most TEASER_MAX_WORDS, never the whole text. A short article
# shows its first lines, not everything above "Read the whole story".
TEASER_SHARE = 0.3
TEASER_MAX_WORDS = 120
# Elements that stand as blocks at the top level of a body.
_VOID = {"br", "hr", "img"}


class _TopLevelBlocks(HTMLParser):
    """Splits clean HTML into its top-level elements, each kept whole as written."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.html = html
        self.blocks: list[str] = []
        self.depth = 0
        self.start = 0
        self._lines = [0]
        for line in html.splitlines(keepends=True):
            self._lines.append(self._lines[-1] + len(line))
        self.feed(html)
        self.close()
        tail = html[self.start :].strip()
        if tail:
            self.blocks.append(tail)

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self._flush_text(self._offset())
        if tag not in _VOID:
            self.depth += 1
        elif self.depth == 0:
            self.blocks.append(self.get_starttag_text() or "")
            self.start = self._offset() + len(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        self.depth = max(0, self.depth - 1)
        if self.depth == 0:
            end = self.html.index(">", self._offset()) + 1
            self.blocks.append(self.html[self.start : end].strip())
            self.start = end

    def _flush_text(self, offset: int) -> None:
        text = self.html[self.start : offset]
        if text.strip():
            self.blocks.append(f"<p>{text.strip()}</p>")
        self.start = offset


def _words(html: str) -> int:
    return len(strip_tags(html).split())


def teaser_html(body: str) -> str:
    """The paywall's cut of a clean body: its first blocks, whole, up to a share of its words.

    Paragraphs stay paragraphs. When even the first block is over the share
    (or the body is one block), that block is cut at a word, with " …".
    """
    blocks = [block for block in _TopLevelBlocks(clean_html(body)).blocks if _words(block)]
    total = sum(_words(block) for block in blocks)
    if not total:
        return ""
    budget = max(1, min(TEASER_MAX_WORDS, int(total * TEASER_SHARE)))
    kept: list[str] = []
    used = 0
    for block in blocks:
        if used + _words(block) > budget:
            break
        kept.append(block)
        used += _words(block)
    if not kept:
        kept = [Truncator(blocks[0]).words(budget, html=True, truncate=" …")]
    return clean_html("\n".join(kept))


# Relative links and images in a body: the site resolves them, a mail client cannot.
_RELATIVE = re.compile(r'(?P<attribute>\b(?:href|src))="(?P<path>/(?!/)[^"]*)"')
# Where a block ends in the plain text of a body: a blank line.
_BLOCK_END = re.compile(r"</(?:p|h2|h3|h4|li|blockquote|figure|pre)>|<br\s*/?>|<hr\s*/?>")


def email_html(body: str, site_url: str) -> str:
    """A body as a digest carries it: cleaned as the site shows it, its links absolute.

    Images get their width capped inline (mail clients drop most stylesheets).
    """
    absolute = _RELATIVE.sub(
        lambda match: f'{match["attribute"]}="{site_url}{match["path"]}"', clean_html(body)
    )
    return absolute.replace("<img ", '<img style="max-width: 100%; height: auto;" ')


def plain_text(body: str) -> str:
    """A body as text: its blocks as paragraphs, one blank line between them."""
    marked = _BLOCK_END.sub(lambda match: match.group(0) + "\n\n", clean_html(body))
    paragraphs = (
        " ".join(part.split()) for part in html.unescape(strip_tags(marked)).split("\n\n")
    )
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
