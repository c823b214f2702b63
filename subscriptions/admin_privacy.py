"""Readers' addresses in the admin: only for staff who may see readers.

Editors (newsletter/migrations/0003) see how a send went as counts and
failure reasons, without who. Hiding a column is not enough: a filter on a
field that may hold an address (`?last_error__icontains=ada@…`, or a regex
walked one letter at a time) tells whether it is there, so such lookups and
searches are refused to staff without the readers permission.
"""

from typing import Any

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

READERS_PERMISSION = "subscriptions.view_subscriber"


def can_see_readers(request: HttpRequest) -> bool:
    return request.user.has_perm(READERS_PERMISSION)


class ReaderDataAdmin(admin.ModelAdmin):
    """A model admin whose `reader_data_fields` may hold readers' addresses.

    Without the readers permission, a filter on one of them in the URL is
    refused (Django answers DisallowedModelAdminLookup with 400), and so is a
    search through them (they leave the search fields).
    """

    reader_data_fields: tuple[str, ...] = ()

    def _is_reader_data(self, path: str) -> bool:
        # A lookup or search field starts with the field's name: `last_error`,
        # `last_error__regex`, `subscriber__email__icontains`; a search field
        # may carry a prefix (`^email`, `=email`, `@email`).
        name = path.lstrip("^=@").split(LOOKUP_SEP)[0]
        return name in self.reader_data_fields

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest) -> bool:
        if self._is_reader_data(lookup) and not can_see_readers(request):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        fields = list(super().get_search_fields(request))
        if can_see_readers(request):
            return fields
        return [field for field in fields if not self._is_reader_data(field)]
