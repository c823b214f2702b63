"""Sanitising editor HTML.

Article bodies are written by staff but end up in readers' browsers and
mail clients, so they are cleaned to a small set of tags and attributes:
no scripts, event handlers, styles or javascript: links can get through.

There is one allow-list, used on save (Article.save and the form field),
on render (the `sanitized` template filter) and, through EDITOR_EXTENSIONS,
to configure the rich-text editor so that what editors can produce is what
survives cleaning.
"""

import re

import nh3

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
    "Link": {"enableTarget": False, "protocols": sorted(URL_SCHEMES)},
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
