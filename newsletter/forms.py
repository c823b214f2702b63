from collections.abc import Mapping
from typing import Any

from django import forms
from django.conf import settings

from newsletter.desk import SampleReader
from newsletter.models import Edition, Section
from subscriptions.forms import TimeZoneField
from subscriptions.models import DigestFormat


class CurationForm(forms.Form):
    """The next edition's order, left-out articles and editor's note.

    One position and one "include" field per article row, named after the
    article's id, so the form never depends on row order in the page.
    """

    editor_note = forms.CharField(
        label="Editor's note",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional; shown above the articles and as the inbox preview line.",
    )

    def __init__(self, data: Mapping[str, object] | None = None, *, edition: Edition) -> None:
        super().__init__(data)
        self.rows = list(edition.rows())
        if not self.is_bound:
            self.initial["editor_note"] = edition.editor_note
        for row in self.rows:
            title = row.article.title
            self.fields[f"position_{row.article_id}"] = forms.IntegerField(
                label=f"Position of “{title}”",
                min_value=1,
                max_value=999,
                initial=row.position,
            )
            self.fields[f"include_{row.article_id}"] = forms.BooleanField(
                label=f"Include “{title}”", required=False, initial=row.included
            )
            self.fields[f"lead_{row.article_id}"] = forms.BooleanField(
                label=f"“{title}” for every reader, whatever their sections",
                required=False,
                initial=row.lead,
            )

    def lines(self) -> list[tuple]:
        """(row, position field, include field, lead field) for each article, in order."""
        return [
            (
                row,
                self[f"position_{row.article_id}"],
                self[f"include_{row.article_id}"],
                self[f"lead_{row.article_id}"],
            )
            for row in self.rows
        ]

    def placements(self) -> dict[int, tuple[int, bool] | tuple[int, bool, bool]]:
        return {
            row.article_id: (
                self.cleaned_data[f"position_{row.article_id}"],
                self.cleaned_data[f"include_{row.article_id}"],
                self.cleaned_data[f"lead_{row.article_id}"],
            )
            for row in self.rows
        }


class DigestChoiceFields(forms.Form):
    """The sections followed and the format the desk's previews and test sends are for."""

    sections = forms.ModelMultipleChoiceField(
        label="following",
        queryset=Section.objects.all(),
        to_field_name="slug",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
        help_text="None chosen: every section.",
    )
    format = forms.ChoiceField(
        label="format", choices=DigestFormat.choices, required=False, initial=DigestFormat.FULL
    )

    def digest(self) -> tuple[frozenset[int] | None, str]:
        """(section ids or None for every section, format): what was asked for, or all in full."""
        if not (self.is_bound and self.is_valid()):
            return None, DigestFormat.FULL
        sections = self.cleaned_data["sections"]
        ids = frozenset(section.pk for section in sections) if sections else None
        return ids, self.cleaned_data["format"] or DigestFormat.FULL


class PreviewForm(DigestChoiceFields):
    """Which reader the desk shows the email as: their state, zone, sections and format."""

    reader = forms.ChoiceField(
        label="Reader", choices=SampleReader.CHOICES, initial=SampleReader.PAYING
    )
    zone = TimeZoneField(label="Time zone", required=False, help_text="")
    field_order = ["reader", "zone", "sections", "format"]

    def choice(self) -> tuple[str, str]:
        """(reader, zone): what was asked for, or a paying reader in the newsroom's zone."""
        reader, zone = SampleReader.PAYING, settings.DIGEST_TIMEZONE
        if self.is_bound and self.is_valid():
            reader = self.cleaned_data["reader"]
            zone = self.cleaned_data["zone"] or zone
        return reader, zone


class TestSendForm(DigestChoiceFields):
    __test__ = False  # not a pytest test class

    reader = forms.ChoiceField(label="Send it as", choices=SampleReader.CHOICES)
    zone = TimeZoneField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The preview's sections and format, carried along unseen.
        self.fields["sections"].widget = forms.MultipleHiddenInput()
        self.fields["format"].widget = forms.HiddenInput()
