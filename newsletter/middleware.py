"""The admin runs in the newsroom's time zone (DIGEST_TIMEZONE).

Editors schedule articles and watch sends that happen at 06:00 New York
time: the admin shows and reads every time in that zone, not the server's
UTC. Reader pages keep their own zones (each reader's), set explicitly in
their templates.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone


def newsroom_time_zone(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path.startswith(reverse("admin:index")):
            # Around the view and the rendering of its TemplateResponse.
            with timezone.override(settings.DIGEST_TIMEZONE):
                return get_response(request)
        return get_response(request)

    return middleware
