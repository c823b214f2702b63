"""Paths to the site's pages, reversed once per process and kept.

A morning's digests carry the same links in every content (the edition,
its stories, the account, the reader's pages), and reverse() costs tens of
microseconds: a day's thousands of contents spent more in it than in their
stories. Kept by the URLconf and script prefix in use, so a change of
either (a test's, a deployment under a prefix) is never served stale.
"""

from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


def path_to(viewname: str, **kwargs: object) -> str:
    """reverse(viewname, kwargs=kwargs), kept for the next call."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _reversed(viewname, tuple(kwargs.items()), urlconf, get_script_prefix())


@lru_cache(maxsize=1024)
def _reversed(
    viewname: str, kwargs: tuple[tuple[str, object], ...], urlconf: str, prefix: str
) -> str:
    return reverse(viewname, urlconf=urlconf, kwargs=dict(kwargs))
