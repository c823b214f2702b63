from django.http import HttpRequest, HttpResponse


def trivial(request: HttpRequest) -> HttpResponse:
    """The page bench's baseline: a Django view that does nothing, through the same middleware."""
    return HttpResponse("ok", content_type="text/plain")
