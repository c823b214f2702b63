from typing import Any

from django import forms
from django.conf import settings

from subscriptions.addresses import normalise_email
from subscriptions.models import NAME_MAX_LENGTH, validate_plain_name, validate_time_zone


class TimeZoneField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("validators", [validate_time_zone])
        kwargs.setdefault(
            "help_text", "Detected from your browser; an IANA name such as Europe/Paris."
        )
        super().__init__(**kwargs)


class ReaderEmailField(forms.EmailField):
    """An email address, cleaned to the one form we store (subscriptions.addresses)."""

    def clean(self, value: object) -> str:
        if isinstance(value, str) and value.strip() and not value.strip().isascii():
            # Judge the local part before Django's validator, whose
            # case-insensitive pattern takes U+017F (long s) for `s` and U+0131 (dotless i) for `i`.
            normalise_email(value)
        return normalise_email(super().clean(value))


class NameField(forms.CharField):
    """A reader's name: short, one line, no link or address (models.name_problem)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", NAME_MAX_LENGTH)
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Name (optional)")
        kwargs.setdefault("validators", [validate_plain_name])
        super().__init__(**kwargs)


class SignupForm(forms.Form):
    email = ReaderEmailField(max_length=254, label="Email address")
    name = NameField()
    time_zone = TimeZoneField(label="Time zone", initial=lambda: settings.DIGEST_TIMEZONE)


class ContinueSignupForm(forms.Form):
    """The page an emailed signup link opens: the owner confirms their name and zone."""

    name = NameField()
    time_zone = TimeZoneField(label="Time zone")


class SignInForm(forms.Form):
    email = ReaderEmailField(max_length=254, label="Email address")


class TimeZoneForm(forms.Form):
    time_zone = TimeZoneField(label="Time zone")
