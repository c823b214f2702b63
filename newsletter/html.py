"""Sanitising editor HTML.

Article bodies are written by staff but end up in readers' browsers and
mail clients, so they are cleaned to a small set of tags and attributes:
no scripts, event handlers, styles or javascript: links can get through.
"""

import nh3

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "strong", "em", "b", "i", "u", "s",
    "a", "ul", "ol", "li", "blockquote", "figure", "figcaption",
    "img", "hr", "code", "pre", "sub", "sup",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def clean_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
