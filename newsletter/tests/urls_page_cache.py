"""The site's URLs plus pages that exercise the page cache where the site's own do not.

No public template has an inline script yet, nor shows messages: these do,
so the tests prove the cache keeps a nonce and a banner to their own response.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path

from config.urls import urlpatterns as site_urlpatterns
from newsletter import pagecache
from newsletter.pagecache import cached_page

renders: list[str] = []

SCRIPTED = engines["django"].from_string(
    '<script nonce="{{ csp_nonce }}">window.x = 1;</script>'
    '<style nonce="{{ csp_nonce }}">p {}</style>'
    '<form method="post">{% csrf_token %}</form>'
    "{% for message in messages %}<p class=banner>{{ message }}</p>{% endfor %}"
)


@cached_page()
def scripted(request: HttpRequest) -> TemplateResponse:
    renders.append(request.path)
    return TemplateResponse(request, SCRIPTED, {})


@cached_page()
def uses_the_real_token(request: HttpRequest) -> HttpResponse:
    """A view that puts the visitor's own token in the page itself, past the template's holes."""
    renders.append(request.path)
    return HttpResponse(f"<p>{get_token(request)}</p>")


@cached_page()
def racing(request: HttpRequest) -> HttpResponse:
    renders.append(request.path)
    if len(renders) == 1:
        pagecache.new_generation()  # a publish commits while this first render reads
    return HttpResponse("<p>A page.</p>")


def leave_a_message(request: HttpRequest) -> HttpResponse:
    messages.success(request, "Saved for you alone.")
    return HttpResponse("ok")


urlpatterns = [
    path("test/scripted/", scripted),
    path("test/real-token/", uses_the_real_token),
    path("test/racing/", racing),
    path("test/message/", leave_a_message),
    *site_urlpatterns,
]
