"""Readers' addresses in the admin: only for staff who may see readers.

Editors (newsletter/migrations/0003) see how a send went as counts and
failure reasons, without who. Hiding a column is not enough: a filter on a
field that may hold an address (`?last_error__icontains=ada@…`, or a regex
walked one letter at a time) tells whether it is there, so such lookups and
searches are refused to staff without the readers permission.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.admin.options import _ListDisplayT

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
    # The list's columns for staff who cannot see readers (None: list_display),
    # whose rows then link nowhere: a row's own page names its reader.
    editor_list_display: Sequence[str] | None = None

    def get_list_display(self, request: HttpRequest) -> "_ListDisplayT[Any]":
        if self.editor_list_display is None or can_see_readers(request):
            return super().get_list_display(request)
        return list(self.editor_list_display)

    # django-stubs leave out the None that Django documents ("no links").
    def get_list_display_links(  # type: ignore[override]
        self, request: HttpRequest, list_display: "_ListDisplayT[Any]"
    ) -> "_ListDisplayT[Any] | None":
        if self.editor_list_display is None or can_see_readers(request):
            return super().get_list_display_links(request, list_display)
        return None

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
