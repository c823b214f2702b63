"""Refusing request bodies too large to be ours, before anything reads them.

Without it a 300 MiB multipart POST to any form (the CSRF check runs only
after Django has parsed the body) was streamed to a temporary file first.
The proxy in front (deploy/Caddyfile) caps bodies too; this holds for
gunicorn reached any other way.
"""

import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse

# What takes a file: the admin's article form (its lead image), the readers'
# CSV import, and the API's article writes (a lead image, multipart).
UPLOAD_PATHS = re.compile(
    r"^/admin/(?:newsletter/article/(?:add|[^/]+/change)|subscriptions/subscriber/import-csv)/$"
    r"|^/api/v1/articles/(?:[0-9]+/)?$"
)


class FileRefused(SuspiciousOperation):
    """A file part in a request to a path that takes no file (answered 400)."""


class RefuseFiles(FileUploadHandler):
    """An upload handler that stops the parse at the first file part: nothing is received."""

    def new_file(self, field_name: str, file_name: str, *args: object, **kwargs: object) -> None:
        raise FileRefused(f"A file ({field_name!r}) was posted where none is taken.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        return raw_data  # never reached: new_file has refused

    def file_complete(self, file_size: int) -> None:
        return None


class RequestSizeLimitMiddleware:
    """Refuse announced bodies over the cap (413) and file parts outside the article form."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        upload = bool(UPLOAD_PATHS.match(request.path_info))
        limit = settings.UPLOAD_REQUEST_MAX_BYTES if upload else settings.REQUEST_MAX_BYTES
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            return HttpResponse("Bad Content-Length.", status=400, content_type="text/plain")
        if length > limit:
            # Answered without reading the body; the server drops the rest.
            return HttpResponse("Request body too large.", status=413, content_type="text/plain")
        if not upload:
            request.upload_handlers = [RefuseFiles(request)]
        return self.get_response(request)
