"""Response headers for reader pages."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


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
