"""Response headers for reader pages."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


def no_referrer(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For pages whose URL holds a secret: the browser sends no Referer from them.

    The site-wide policy (same-origin) would send the full URL, token and
    all, with every request the page makes to this site (its stylesheet, its
    scripts), into access logs; SecurityMiddleware keeps a header a view set.
    """

    @functools.wraps(view)
    def without_referrer(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        return response

    return without_referrer


def origin_only_referrer(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For pages whose URL holds a secret and whose forms post to it: only the origin is sent.

    Under no-referrer a browser posts a form with "Origin: null", which the
    CSRF check rightly refuses. strict-origin sends this site's origin as
    the Referer (never the path, with its token) and keeps the real Origin
    header on the page's own form posts.
    """

    @functools.wraps(view)
    def origin_only(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "strict-origin"
        return response

    return origin_only


def personal(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For pages that show one reader's data: no cache, shared or the browser's, keeps them.

    `private` keeps proxies and CDNs from serving the page to someone else;
    `no-store` keeps it off the disk of a shared computer and out of the
    back button after signing out.
    """

    @functools.wraps(view)
    def never_stored(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        patch_cache_control(response, private=True, no_store=True)
        return response

    return never_stored
