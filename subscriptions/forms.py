from django import forms
from django.conf import settings

from subscriptions.models import validate_time_zone


class TimeZoneField(forms.CharField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("validators", [validate_time_zone])
        kwargs.setdefault(
            "help_text", "Detected from your browser; an IANA name such as Europe/Paris."
        )
        super().__init__(**kwargs)


class SignupForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")
    name = forms.CharField(max_length=200, required=False, label="Name (optional)")
    time_zone = TimeZoneField(label="Time zone", initial=lambda: settings.DIGEST_TIMEZONE)


class SignInForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")


class TimeZoneForm(forms.Form):
    time_zone = TimeZoneField(label="Time zone")
