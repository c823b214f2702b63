"""The public pages, cached whole for anonymous visitors, with holes for what is theirs.

A newsletter's landing page, teasers, archive, sections, editions and feed
are the same for every visitor who is not signed in, except for two strings:
the CSRF token of the signup form (it must match the visitor's own CSRF
cookie) and the CSP nonce (it must match this response's header). So a page
is rendered once with a random marker in place of each and stored in the
"pages" cache; every visitor gets that HTML with the markers replaced by
their own token and this response's nonce, without a template or a query.

Who is served from the cache: a GET or HEAD without a signed-in user
(staff or not) or reader in the session and without pending messages, for
a query string the view declares (`page`). Everyone else gets the page
rendered for them, and it is never stored.

Freshness: every entry belongs to a generation, a random value in the cache.
Any write to the public content (articles, sections, editions and what they
carry: newsletter.apps connects saves and deletes, the models' querysets
their bulk updates) replaces the generation once the transaction commits,
so the next request renders anew: at once in the process that wrote, within
GENERATION_SECONDS (1) in the others, which read it again that often. A
request takes the generation before it reads the database, so a page
rendered from data older than a commit is stored under the generation that
commit replaced, and not served once the new one is read. Entries also
expire after PAGE_CACHE_SECONDS, which bounds what no write announces (a
new deploy's templates, an article whose publication time comes without a
write).
"""

import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypedDict, TypeGuard

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.middleware.csp import get_nonce
from django.middleware.csrf import get_token
from django.template.response import SimpleTemplateResponse
from django.utils.cache import patch_vary_headers
from redis.exceptions import RedisError

from subscriptions.sessions import SESSION_KEY as READER_SESSION_KEY

logger = logging.getLogger(__name__)

CACHE_ALIAS = "pages"
# What the page cache raises when it cannot be reached: Redis down or
# restarting, the cache folder unwritable.
CACHE_ERRORS = (RedisError, OSError)
GENERATION_KEY = "generation"
# Part of every key: entries of an older layout are never read as this one.
FORMAT = "2"
# The settings the public pages print: a change (a deploy with another
# trial length, say) must not serve pages rendered under the old value,
# which a Redis cache would keep across the restart.
PAGE_SETTINGS = (
    "NEWSLETTER_NAME", "TRIAL_DAYS", "SITE_URL", "DEBUG", "STATIC_URL", "DIGEST_TIMEZONE",
    "LANGUAGE_CODE",
)  # fmt: skip

type View = Callable[..., HttpResponse]

# Each process keeps a copy of the pages it served, so that a hit does not
# fetch the page from the shared cache (31 KB for the landing page, unpickled
# and, from files, decompressed each time); a copy counts only while its
# generation is the current one.
LOCAL_ENTRIES = 500
_local: dict[str, "Entry"] = {}
# And the generation, which it reads again after GENERATION_SECONDS: reading
# it for every request was a round trip to Redis per page, as much as all
# the rest of a hit. A write is seen at once in the process that made it and
# within this time in every other one.
GENERATION_SECONDS = 1.0
_generation_read: tuple[float, str] = (0.0, "")  # (time.time() of the read, generation)


class Entry(TypedDict):
    generation: str
    # time.time() after which the copies in processes are not used either.
    expires: float
    content: bytes
    # The view's own headers (Content-Type, the feed's Last-Modified); the
    # middleware adds cookies, Vary, CSP and the rest to each response.
    headers: dict[str, str]
    csrf_hole: str | None
    nonce_hole: str | None


def page_cache() -> BaseCache:
    return caches[CACHE_ALIAS]


def invalidate() -> None:
    """Replace the cached pages once the current transaction commits (at once outside one).

    Robust: the write has succeeded by then; a cache that cannot be reached
    is logged, and its pages expire within PAGE_CACHE_SECONDS.
    """
    transaction.on_commit(new_generation, robust=True)


def new_generation() -> str:
    global _generation_read
    generation = secrets.token_hex(8)
    page_cache().set(GENERATION_KEY, generation, timeout=None)
    _generation_read = (time.time(), generation)
    return generation


def current_generation(store: BaseCache) -> str:
    """The generation, as this process read it within GENERATION_SECONDS, else from the cache."""
    global _generation_read
    read_at, generation = _generation_read
    # A clock set back counts as time up too.
    if not generation or not 0 <= time.time() - read_at < GENERATION_SECONDS:
        generation = store.get(GENERATION_KEY) or first_generation(store)
        _generation_read = (time.time(), generation)
    return generation


def content_changed(sender: type, **kwargs: object) -> None:
    """Receiver of the public models' post_save and post_delete (newsletter.apps)."""
    invalidate()


@functools.cache
def fingerprint() -> str:
    """The page settings and the static files' manifest (hashed file names), in short."""
    values = [repr(getattr(settings, name, None)) for name in PAGE_SETTINGS]
    # Pages link the hashed names of the static files; after a deploy the
    # old names may be gone. Only the manifest storage has this hash.
    values.append(getattr(staticfiles_storage, "manifest_hash", ""))
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:16]


@receiver(setting_changed)
def settings_changed(**kwargs: object) -> None:
    # Tests change settings per test; production settings change with a restart.
    fingerprint.cache_clear()


def is_anonymous(request: HttpRequest) -> bool:
    """Whether the page is the one every anonymous visitor gets.

    Without a session cookie nobody is signed in, and nothing is read from
    the database to know it. Messages (a banner for this visitor) are kept
    in a cookie, or in the session when they overflow it.
    """
    if len(messages.get_messages(request)):
        return False
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return True
    session = request.session
    return USER_SESSION_KEY not in session and READER_SESSION_KEY not in session


def page_key(request: HttpRequest, params: tuple[str, ...]) -> str | None:
    """The cache key of this request's page, or None if the page is not to be cached.

    Host and scheme are part of it: the feed's links are built from them.
    Query parameters other than the view's own (which may change the page,
    as the landing page's ?checkout=cancelled does) are not cached; nor are
    page numbers that are not small numbers, so no one can fill the cache
    with variants.
    """
    if request.method not in ("GET", "HEAD"):
        return None
    query = []
    for name, values in request.GET.lists():
        if name not in params or len(values) != 1:
            return None
        value = values[0]
        if not (value.isascii() and value.isdigit() and len(value) <= 4):
            return None
        query.append(f"{name}={value}")
    scheme = "https" if request.is_secure() else "http"
    path = f"{request.path}?{'&'.join(sorted(query))}"
    return f"{FORMAT}:{fingerprint()}:{scheme}://{request.get_host()}{path}"


def cached_page(*, params: tuple[str, ...] = ()) -> Callable[[View], View]:
    """Serve the view's page from the page cache to anonymous visitors (see the module)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            key = page_key(request, params) if settings.PAGE_CACHE_SECONDS else None
            if key is None or not is_anonymous(request):
                return view(request, *args, **kwargs)
            store = page_cache()
            try:
                generation = current_generation(store)
                entry = stored_entry(store, key, generation)
            except CACHE_ERRORS as error:
                # The pages worked without Redis before they were cached: they still do.
                logger.warning("Page cache unavailable, %s rendered: %s", request.path, error)
                return view(request, *args, **kwargs)
            if entry is None:
                response = view(request, *args, **kwargs)
                entry = render_with_holes(request, response, generation)
                if entry is None:
                    return response
                try:
                    store.set(key, entry, timeout=settings.PAGE_CACHE_SECONDS)
                except CACHE_ERRORS as error:
                    logger.warning("Page cache unavailable, %s not stored: %s", request.path, error)
                _local[key] = entry
            response = HttpResponse(fill_holes(request, entry), headers=entry["headers"])
            # The page differs for signed-in readers and staff, and carries
            # this visitor's CSRF token: no shared HTTP cache may reuse it.
            patch_vary_headers(response, ["Cookie"])
            return response

        return wrapper

    return decorator


def stored_entry(store: BaseCache, key: str, generation: str) -> Entry | None:
    """The page of this generation, from this process's copy or else the shared cache."""
    entry = _local.get(key)
    if not is_current(entry, generation):
        entry = store.get(key)
        if not is_current(entry, generation):
            return None
        if len(_local) >= LOCAL_ENTRIES:
            _local.clear()  # crude, and rare: the site has few pages that are read much
        _local[key] = entry
    return entry


def is_current(entry: Entry | None, generation: str) -> TypeGuard[Entry]:
    # Its own expiry too: the shared cache's clock (Redis's) is not the one
    # the tests move, nor need it agree with ours.
    return (
        entry is not None and entry["generation"] == generation and entry["expires"] > time.time()
    )


def first_generation(store: BaseCache) -> str:
    """The generation, starting one if there is none (a new or a flushed cache)."""
    store.add(GENERATION_KEY, secrets.token_hex(8), timeout=None)
    generation: str | None = store.get(GENERATION_KEY)
    # Evicted again in between: this request's page is stored under a
    # generation nobody reads, which costs a render, never a stale page.
    return generation or secrets.token_hex(8)


def render_with_holes(
    request: HttpRequest, response: HttpResponse, generation: str
) -> Entry | None:
    """The response as an entry with markers for the CSRF token and nonce; None if not storable.

    Only a plain 200 that the view built without this visitor's own data is
    stored: no cookie set, no session or message change, and neither the
    real CSRF token nor the real nonce used (they would be served to everyone).
    """
    if response.status_code != 200 or response.streaming:
        return None
    csrf_hole = f"csrfhole{secrets.token_hex(16)}"
    nonce_hole = f"noncehole{secrets.token_hex(16)}" if get_nonce(request) is not None else None
    if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
        holes = {"csrf_token": csrf_hole}
        if nonce_hole:
            holes["csp_nonce"] = nonce_hole
        response.context_data = {**(response.context_data or {}), **holes}
        response.render()
    entry = entry_of(response, generation, csrf_hole, nonce_hole)
    session = getattr(request, "session", None)
    personal = (
        response.cookies
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        # True once the nonce was generated, which only using it does.
        or get_nonce(request)
        or (session is not None and session.modified)
        or len(messages.get_messages(request))
    )
    if personal:
        # Rendered for this visitor alone: the holes, if any, are theirs to fill.
        response.content = fill_holes(request, entry)
        return None
    return entry


def entry_of(
    response: HttpResponse, generation: str, csrf_hole: str, nonce_hole: str | None
) -> Entry:
    content = response.content
    return {
        "generation": generation,
        "expires": time.time() + settings.PAGE_CACHE_SECONDS,
        "content": content,
        "headers": dict(response.headers),
        # Looked for once here, so a hit replaces only what the page has.
        "csrf_hole": csrf_hole if csrf_hole.encode() in content else None,
        "nonce_hole": nonce_hole if nonce_hole and nonce_hole.encode() in content else None,
    }


def fill_holes(request: HttpRequest, entry: Entry) -> bytes:
    """The page with this visitor's CSRF token and this response's CSP nonce in its holes.

    Asking for them is what makes the middleware send the CSRF cookie and
    put the nonce in the CSP header, as rendering the page would.
    """
    content = entry["content"]
    if entry["csrf_hole"]:
        content = content.replace(entry["csrf_hole"].encode(), get_token(request).encode())
    if entry["nonce_hole"]:
        content = content.replace(entry["nonce_hole"].encode(), str(get_nonce(request)).encode())
    return content
