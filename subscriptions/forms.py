import datetime
import functools
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.forms.utils import flatatt
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from subscriptions.addresses import check_can_receive_mail, suggested_address, validate_address
from subscriptions.models import (
    DAY_NAMES,
    DIGEST_DAYS,
    NAME_MAX_LENGTH,
    DigestFormat,
    Subscriber,
    validate_plain_name,
)

# What a `sections` value may also be: every section, those added later included.
ALL_SECTIONS = "all"

# The regions of the IANA database whose zones readers live in; the rest
# (Etc/GMT+5, US/Eastern ...) are aliases a chooser need not offer.
REGIONS = (
    "Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic",
    "Australia", "Europe", "Indian", "Pacific",
)  # fmt: skip


@functools.cache
def time_zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every real zone, grouped by region for the <select> (typing a city finds it)."""
    groups: dict[str, list[tuple[str, str]]] = {region: [] for region in REGIONS}
    for zone in sorted(zoneinfo.available_timezones()):
        region, _, place = zone.partition("/")
        if region in groups and place:
            groups[region].append((zone, place.replace("_", " ").replace("/", " / ")))
    return [("Universal", [("UTC", "UTC")]), *groups.items()]


@functools.cache
def _zone_options_html() -> str:
    """Every zone's <option>, grouped, escaped once per process."""
    groups = []
    for region, zones in time_zone_choices():
        options = "\n".join(
            f'<option value="{escape(zone)}">{escape(label)}</option>' for zone, label in zones
        )
        groups.append(f'<optgroup label="{escape(region)}">\n{options}\n</optgroup>')
    return "\n".join(groups)


class ZoneSelect(forms.Select):
    """The zone <select>, its ~600 options rendered once per process.

    Django renders each option through a template: 13 ms of every page with
    the signup form, most of the landing page's time. The markup is the
    same; only the reader's own zone is marked selected per render.
    """

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        options = _zone_options_html()
        for selected in self.format_value(value)[:1]:
            option = f'<option value="{escape(selected)}">'
            options = options.replace(option, option[:-1] + " selected>", 1)
        attributes = flatatt(self.build_attrs(self.attrs, attrs))
        return mark_safe(f'<select name="{escape(name)}"{attributes}>\n{options}\n</select>')  # noqa: S308 - every value above is escaped


class TimeZoneField(forms.ChoiceField):
    """A reader's zone: a choice of real IANA zones, not a free-text box."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", time_zone_choices)
        kwargs.setdefault("widget", ZoneSelect(attrs={"aria-describedby": "tz-help"}))
        kwargs.setdefault("help_text", "Your digest comes at your delivery time in this zone.")
        kwargs.setdefault(
            "error_messages", {"invalid_choice": "%(value)s is not a known time zone."}
        )
        super().__init__(**kwargs)

    def valid_value(self, value: str) -> bool:
        # Also the zones an older form let a reader store (aliases like US/Eastern).
        return super().valid_value(value) or value in zoneinfo.available_timezones()


def send_time_choices() -> list[tuple[str, str]]:
    """Morning delivery times, 05:00 to 10:00 every half hour, and the default."""
    times = {datetime.time(hour, minute) for hour in range(5, 11) for minute in (0, 30)}
    times.discard(datetime.time(10, 30))
    times.add(settings.DIGEST_SEND_TIME)
    return [(f"{time:%H:%M}", f"{time:%H:%M}") for time in sorted(times)]


class SendTimeField(forms.TypedChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", send_time_choices)
        kwargs.setdefault("coerce", lambda value: datetime.time.fromisoformat(value))
        kwargs.setdefault("label", "Delivery time")
        kwargs.setdefault(
            "error_messages",
            {"invalid_choice": "Choose a morning time between 05:00 and 10:00."},
        )
        super().__init__(**kwargs)


class ReaderEmailField(forms.EmailField):
    """An email address, cleaned to the one form we store (subscriptions.addresses).

    Checked by addresses.validate_address, as an imported list is; DNS is
    asked by the forms, after a typo has had its suggestion (TypoCheckedEmailMixin).
    """

    default_validators = []  # Django's EmailValidator runs in validate_address

    def clean(self, value: object) -> str:
        return validate_address(super().clean(value))


class TypoCheckedEmailMixin(forms.Form):
    """An address with a likely typo in its domain is sent back once, with a suggestion;
    then, with EMAIL_CHECK_DELIVERABILITY, one whose domain has no mail server is refused
    by `check_deliverable()`, which the view calls after its rate limits.

    "Did you mean ada@gmail.com?": the reader presses "Use ada@gmail.com"
    (the `use_email` button), or sends the form again unchanged to keep what
    they typed (the hidden `keep_email` says they have seen the question).
    """

    keep_email = forms.CharField(required=False, widget=forms.HiddenInput)
    suggested_email: str | None = None

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        # The "Use …" button is the form's first, so Enter presses it too: it
        # applies only to the address it was offered for, not one edited since.
        if (
            data is not None
            and data.get("use_email")
            and data.get("email") == data.get("keep_email")
        ):
            data = data.copy()
            data["email"] = data["use_email"]
        super().__init__(data, *args, **kwargs)

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        suggestion = suggested_address(email)
        if suggestion and self.data.get("keep_email") != email:
            self.suggested_email = suggestion
            typed = email.rpartition("@")[2]
            raise forms.ValidationError(
                f"Did you mean {suggestion}? You typed {typed}. If your address is right as "
                "typed, send the form again.",
                code="typo",
            )
        return email

    def check_deliverable(self) -> bool:
        """With EMAIL_CHECK_DELIVERABILITY, whether DNS says the valid form's address
        receives mail; if not, the reason is added to the form's errors.

        Not part of is_valid(): a lookup may take seconds (DNS_TIMEOUT), so the
        views ask only once the request has passed their rate limits.
        """
        if not settings.EMAIL_CHECK_DELIVERABILITY:
            return True
        try:
            check_can_receive_mail(self.cleaned_data["email"], ask_dns=True)
        except forms.ValidationError as error:
            self.add_error("email", error)
            return False
        return True


class NameField(forms.CharField):
    """A reader's name: short, one line, no link or address (models.name_problem)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", NAME_MAX_LENGTH)
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Name (optional)")
        kwargs.setdefault("validators", [validate_plain_name])
        super().__init__(**kwargs)


class SignupForm(TypoCheckedEmailMixin, forms.Form):
    email = ReaderEmailField(max_length=254, label="Email address")
    name = NameField()
    # Preselected from the browser (static/js/signup.js); a form without it
    # (JavaScript off, or a form embedded on another site) gets the default.
    time_zone = TimeZoneField(
        label="Time zone",
        required=False,
        initial=lambda: settings.DIGEST_TIMEZONE,
        widget=ZoneSelect(attrs={"data-detect-time-zone": "", "aria-describedby": "tz-help"}),
    )

    def clean_time_zone(self) -> str:
        return self.cleaned_data.get("time_zone") or settings.DIGEST_TIMEZONE


def section_model() -> Any:
    """newsletter.Section, reached through the reader's field: this app never imports newsletter."""
    return Subscriber._meta.get_field("sections").related_model


class DigestChoicesForm(forms.Form):
    """What the digest carries and when: the sections followed, the weekdays, the format.

    Posted as `sections` (repeated section slugs; every section, or the
    value "all", is "every section, new ones included"), `days` (repeated,
    mon..fri) and `format` (full or headlines). At least one of each. A
    post that names none of the three (nor the pages' hidden `digest_choices`
    marker, which unticked boxes need) leaves them as they are: a form or
    client from before they existed still saves the rest.
    """

    CHOICES = ("sections", "days", "format")
    MARKER = "digest_choices"

    sections = forms.MultipleChoiceField(
        label="Sections",
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one section.",
            "invalid_choice": "%(value)s is not one of our sections.",
        },
    )
    days = forms.MultipleChoiceField(
        label="Days",
        choices=list(DAY_NAMES.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one day.",
            "invalid_choice": "%(value)s is not a weekday we send on (mon to fri).",
        },
    )
    format = forms.ChoiceField(
        label="Format",
        choices=[
            (DigestFormat.FULL, "Full stories: each story whole, in the email"),
            (DigestFormat.HEADLINES, "Headlines only: titles, a line each, and links"),
        ],
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose full or headlines."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section_choices = list(section_model().objects.values_list("slug", "name"))
        field = self.fields["sections"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [*self.section_choices, (ALL_SECTIONS, "Every section")]
        if not self.section_choices:
            # No sections yet: every story goes to everyone; nothing to choose.
            field.required = False
            field.widget = forms.MultipleHiddenInput()
        self.posts_choices = self.is_bound and any(
            key in self.data for key in (*self.CHOICES, self.MARKER)
        )
        if self.is_bound and not self.posts_choices:
            for name in self.CHOICES:
                del self.fields[name]

    @staticmethod
    def initial_for(subscriber: Subscriber) -> dict[str, object]:
        """The form's initial values for a reader's current choices."""
        if subscriber.pk is None or subscriber.followed_section_ids() is None:
            sections = list(section_model().objects.values_list("slug", flat=True))
        else:
            sections = [section.slug for section in subscriber.sections.all()]
        return {
            "sections": sections,
            "days": subscriber.weekdays,
            "format": subscriber.digest_format,
        }

    @property
    def marker(self) -> SafeString:
        return mark_safe(f'<input type="hidden" name="{self.MARKER}" value="1">')  # noqa: S308 - a constant

    def clean_sections(self) -> list[str] | None:
        """The slugs followed, or None for every section (every box ticked, or "all")."""
        slugs: list[str] = self.cleaned_data.get("sections") or []
        every = {slug for slug, _name in self.section_choices}
        if ALL_SECTIONS in slugs or not every or every <= set(slugs):
            return None
        return slugs

    def clean_days(self) -> str:
        days: list[str] = self.cleaned_data["days"]
        return ",".join(day for day in DIGEST_DAYS if day in days)

    def digest_choices(self) -> dict[str, Any] | None:
        """The cleaned choices as do_set_digest_choices takes them; None: not posted."""
        if not self.posts_choices:
            return None
        return {
            "sections": self.cleaned_data["sections"],
            "days": self.cleaned_data["days"],
            "digest_format": self.cleaned_data["format"],
        }


class ContinueSignupForm(DigestChoicesForm):
    """The page an emailed signup link opens: the owner confirms their name, zone and digest."""

    name = NameField()
    time_zone = TimeZoneField(label="Time zone")

    field_order = ["name", "time_zone", "sections", "days", "format"]


class SignInForm(TypoCheckedEmailMixin, forms.Form):
    email = ReaderEmailField(max_length=254, label="Email address")


class ChangeEmailForm(TypoCheckedEmailMixin, forms.Form):
    """The account page's new address; a link to it confirms the change."""

    email = ReaderEmailField(max_length=254, label="New email address")

    def __init__(self, *args: Any, current: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current = current

    def clean_email(self) -> str:
        email = super().clean_email()
        if email.lower() == self.current.lower():
            raise forms.ValidationError("That is your address already.", code="unchanged")
        return email


class PreferencesForm(DigestChoicesForm):
    """What a reader sets about their digest: where and when it comes, what it holds, a pause."""

    time_zone = TimeZoneField(label="Time zone")
    send_time = SendTimeField()
    pause_until = forms.DateField(
        label="Pause until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="No digest before this date; they resume on it. Leave empty for no pause.",
    )

    def __init__(self, *args: Any, today: datetime.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        # A time staff set outside the usual mornings (11:15, say) stays the
        # reader's to keep: offered, selected, and accepted when saved as is.
        current = self.initial.get("send_time")
        field = self.fields["send_time"]
        assert isinstance(field, SendTimeField)
        usual = send_time_choices()
        if current and current not in dict(usual):
            field.choices = sorted([*usual, (current, f"{current} (set for you)")])

    def clean_pause_until(self) -> datetime.date | None:
        pause_until: datetime.date | None = self.cleaned_data.get("pause_until")
        if pause_until is None or pause_until <= self.today:
            return None  # today or earlier: no pause at all
        if pause_until > self.today + datetime.timedelta(days=366):
            raise forms.ValidationError("Pause for a year at most; or unsubscribe instead.")
        return pause_until
