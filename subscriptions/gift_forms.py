"""The gift page's form, and the recipient's page's."""

import datetime
from typing import Any

from django import forms

from subscriptions.forms import NameField, ReaderEmailField, TimeZoneField

LATEST_DELIVERY_DAYS = 366


class GiftForm(forms.Form):
    buyer_email = ReaderEmailField(max_length=254, label="Your email address (for the receipt)")
    recipient_email = ReaderEmailField(max_length=254, label="Their email address")
    deliver_on = forms.DateField(
        label="Deliver on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="We email them that morning (the newsroom's date).",
    )

    def __init__(self, *args: Any, today: datetime.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["deliver_on"].initial = today

    def clean_deliver_on(self) -> datetime.date:
        deliver_on: datetime.date = self.cleaned_data["deliver_on"]
        if deliver_on < self.today:
            raise forms.ValidationError("Choose today or a later date.")
        if deliver_on > self.today + datetime.timedelta(days=LATEST_DELIVERY_DAYS):
            raise forms.ValidationError("Choose a date within a year.")
        return deliver_on

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        buyer, recipient = data.get("buyer_email"), data.get("recipient_email")
        if buyer and recipient and buyer.lower() == recipient.lower():
            # Not forbidden by money, but almost always a slip of the keyboard.
            self.add_error("recipient_email", "That is your own address: whom is the gift for?")
        return data


class RedeemGiftForm(forms.Form):
    name = NameField()
    time_zone = TimeZoneField(label="Your time zone")
