"""The emails a reader gets about their membership, one small function each.

Each renders templates/emails/<name>.txt, <name>.html and <name>_subject.txt.
"""

import datetime
from email.utils import make_msgid
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from delivery.deliverability.verp import verp_address
from newsletter import calendar
from subscriptions import (
    billing_links,
    gifts,
    preferences,
    referrals,
    signin,
    stripe_api,
    teams,
    trials,
    unsubscribe,
)
from subscriptions.models import DIGEST_DAYS, DigestFormat, GiftCode, ReaderEmail, Subscriber
from subscriptions.team_models import Team, TeamSeat

# The shared email frame (templates/emails/_base.html) is styled by classes;
# mail clients need them inline. Media queries (dark mode) stay in <style>.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def first_digest_at(
    subscriber: Subscriber, now: datetime.datetime | None = None
) -> datetime.datetime:
    """When a reader who signs up now gets their first digest, in their own zone.

    The next send moment after `now`: their delivery time, the next weekday
    morning where they live that is not a no-send day. The sender applies
    the same rule (delivery.scheduler.schedule_slot).
    """
    weekdays = [DIGEST_DAYS.index(day) for day in subscriber.weekdays]
    moment = calendar.next_digest_at(subscriber.send_time, subscriber.time_zone, now, weekdays)
    return moment.astimezone(ZoneInfo(subscriber.time_zone))


def zone_place(zone: str) -> str:
    """A zone as people name it: "Lisbon" for Europe/Lisbon, "UTC" for UTC."""
    return zone.rpartition("/")[2].replace("_", " ")


def next_digest_summary(subscriber: Subscriber, now: datetime.datetime | None = None) -> str:
    """What the reader's next digest holds and when, in words.

    "Wednesday 06:00 in Lisbon: World, Business; headlines only". Stories
    with no section and the editors' lead stories come whatever the sections.
    """
    moment = first_digest_at(subscriber, now)
    followed = subscriber.followed_section_ids()
    if followed is None:
        sections = "every section"
    else:
        sections = ", ".join(
            section.name for section in subscriber.sections.all() if section.pk in followed
        )
    length = (
        "headlines only" if subscriber.digest_format == DigestFormat.HEADLINES else "full stories"
    )
    return f"{moment:%A %H:%M} in {zone_place(subscriber.time_zone)}: {sections}; {length}"


def dollars(cents: int | None) -> str:
    """$46 for 4600; None (an amount Stripe did not tell us) is the list price."""
    cents = stripe_api.PRICE_CENTS if cents is None else cents
    return f"${cents // 100}" if cents % 100 == 0 else f"${cents / 100:.2f}"


def _parse(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def _url(name: str) -> str:
    return f"{settings.SITE_URL}{reverse(name)}"


def _message(subscriber: Subscriber, name: str, **context: object) -> EmailMultiAlternatives:
    context = {
        "subscriber": subscriber,
        "newsletter_name": settings.NEWSLETTER_NAME,
        "site_url": settings.SITE_URL,
        "account_url": _url("subscriptions:account"),
        "reader_zone": ZoneInfo(subscriber.time_zone),
        # Every email to a reader links their digest settings (none before
        # there is a reader: a signup link goes to an address, not a reader).
        "preferences_url": preferences.preferences_url(subscriber) if subscriber.pk else "",
        **context,
    }
    subject = " ".join(render_to_string(f"emails/{name}_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{name}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        # On the site's domain, as the digest's are: Django's default is this
        # machine's name (often localhost), which spam filters count against.
        headers={
            "Message-ID": make_msgid(domain=urlsplit(settings.SITE_URL).hostname),
            # Gmail's Postmaster Tools report spam rates per kind of email by it.
            "Feedback-ID": f"{name}:reader:{settings.FEEDBACK_ID_SENDER}",
        },
    )
    html = INLINER.inline(render_to_string(f"emails/{name}.html", context))
    message.attach_alternative(html, "text/html")
    # VERP (BOUNCE_DOMAIN): a bounce of this email names the reader.
    message.smtp_envelope_from = verp_address("s", subscriber.pk) if subscriber.pk else None  # type: ignore[attr-defined]
    return message


def welcome(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "welcome",
        first_digest=first_digest_at(email.subscriber, email.created_at),
        digest_zone=email.subscriber.time_zone,
        trial_end=_parse(email.context.get("trial_end")),
        amount=dollars(email.subscriber.membership.charge_amount),
        referral_url=referrals.referral_url(email.subscriber),
    )


def trial_ending(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "trial_ending",
        trial_end=_parse(email.context["trial_end"]),
        amount=dollars(email.context.get("amount")),
        has_payment_method=email.context.get("has_payment_method", True),
    )


def payment_failed(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "payment_failed",
        amount=dollars(email.context.get("amount")),
        fix_url=email.context.get("hosted_invoice_url") or _url("subscriptions:account"),
        next_attempt=_parse(email.context.get("next_payment_attempt")),
        grace_days=settings.PAST_DUE_GRACE_DAYS,
    )


def payment_action_required(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "payment_action_required",
        amount=dollars(email.context.get("amount")),
        fix_url=email.context.get("hosted_invoice_url") or _url("subscriptions:account"),
    )


def membership_ended(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "membership_ended",
        unpaid=email.context.get("status") == "unpaid",
        # One click back: a new checkout, at the full price, without a second trial.
        signup_url=billing_links.rejoin_url(email.subscriber),
        amount=dollars(None),
    )


def renewal_notice(email: ReaderEmail) -> EmailMultiAlternatives:
    amount = email.context.get("amount")
    list_amount = email.context.get("list_amount")
    return _message(
        email.subscriber,
        "renewal_notice",
        renews_at=_parse(email.context["renews_at"]),
        amount=dollars(amount),
        # Named only when a promotion code makes the charge differ from the price.
        list_amount=dollars(list_amount) if list_amount and list_amount != amount else "",
        renewal_url=billing_links.renewal_url(email.subscriber),
    )


def win_back(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "win_back",
        rejoin_url=billing_links.rejoin_url(email.subscriber),
        amount=dollars(None),
    )


def _addressee(email: str) -> Subscriber:
    """An unsaved reader to address an email to someone who may be no reader (a gift's people).

    Greeted by no name: names on a gift form are typed by the buyer, and a
    stranger's typing is never printed in an official email.
    """
    return Subscriber(email=email, time_zone=settings.DIGEST_TIMEZONE)


def gift_receipt(gift: GiftCode) -> EmailMultiAlternatives:
    return _message(
        _addressee(gift.buyer_email),
        "gift_receipt",
        gift=gift,
        amount=dollars(gift.amount),
        newsroom_zone=settings.DIGEST_TIMEZONE,
    )


def gift_delivery(gift: GiftCode) -> EmailMultiAlternatives:
    return _message(
        _addressee(gift.recipient_email),
        "gift_delivery",
        gift=gift,
        redeem_url=gifts.redeem_url(gift),
        amount=dollars(None),
    )


def gift_ending(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(email.subscriber, "gift_ending", until=_parse(email.context["until"]))


def gift_ended(email: ReaderEmail) -> EmailMultiAlternatives:
    return _message(
        email.subscriber,
        "gift_ended",
        rejoin_url=billing_links.rejoin_url(email.subscriber),
        amount=dollars(None),
    )


def sign_in_link(subscriber: Subscriber, *, already_member: bool = False) -> EmailMultiAlternatives:
    return _message(
        subscriber,
        "sign_in_link",
        sign_in_url=signin.sign_in_url(subscriber),
        minutes=signin.link_minutes(),
        already_member=already_member,
    )


def email_change_link(subscriber: Subscriber, new_email: str) -> EmailMultiAlternatives:
    """To the new address: the link that moves the reader to it.

    Nobody has shown yet that the new address is the reader's (a typo may
    name a stranger's mailbox, or a domain that bounces), so the email
    carries nothing of the reader's but the link that works once: it is
    addressed as to someone who is no reader yet, greeting nobody by name,
    with no preferences or account link, and its envelope sender is the
    plain From address. The reader's VERP address would have a bounce from
    the typo mark their current, working address bounced.
    """
    return _message(
        Subscriber(email=new_email, time_zone=subscriber.time_zone),
        "email_change_link",
        new_email=new_email,
        change_url=signin.email_change_url(
            signin.EmailChangeClaim(subscriber.pk, subscriber.email, new_email)
        ),
        minutes=signin.link_minutes(),
    )


UNDELIVERABLE = (Subscriber.EmailStatus.BOUNCED, Subscriber.EmailStatus.COMPLAINED)


def signup_reply(
    email: str, name: str, time_zone: str, referral: str = ""
) -> EmailMultiAlternatives | None:
    """The email that answers a signup request for `email`, or None to send nothing.

    A reader with a live (or complimentary) membership gets a sign-in link:
    nothing to pay twice. Anyone else gets a link to continue, saying
    whether a free trial applies. An address that bounced or complained
    gets nothing. Only the address's owner reads which one it was.
    """
    subscriber = Subscriber.objects.select_related("membership").filter(email__iexact=email).first()
    if subscriber is not None and subscriber.email_status in UNDELIVERABLE:
        return None
    membership = getattr(subscriber, "membership", None) if subscriber else None
    if subscriber is not None and membership is not None and membership.needs_no_checkout:
        return sign_in_link(subscriber, already_member=True)
    # A reader who is not one yet: an unsaved one, to address and greet nobody by name.
    recipient = subscriber or Subscriber(email=email, time_zone=time_zone)
    return _message(
        recipient,
        "signup_link",
        signup_url=signin.signup_url(email, name, time_zone, subscriber, referral),
        minutes=signin.link_minutes(),
        trial_days=trials.trial_days(
            membership, referred=referrals.offers_trial(referral, email) or None
        ),
        amount=dollars(None),
    )


def team_seat_link(team: Team, email: str, name: str, time_zone: str) -> EmailMultiAlternatives:
    """The link that proves an address before it takes a team's seat."""
    recipient = Subscriber.objects.filter(email__iexact=email).first()
    return _message(
        recipient or Subscriber(email=email, time_zone=time_zone),
        "team_seat_link",
        team_name=team.name,
        seat_url=teams.seat_url(team, email, name, time_zone),
        minutes=signin.link_minutes(),
    )


def team_seat_ended(seat: TeamSeat) -> EmailMultiAlternatives:
    """A member the manager removed: until when they read, and the trial offer."""
    membership = getattr(seat.subscriber, "membership", None)
    return _message(
        seat.subscriber,
        "team_seat_ended",
        team_name=seat.team.name,
        access_until=seat.access_until,
        own_membership=bool(membership and membership.is_entitled),
        trial_days=trials.trial_days(membership),
        amount=dollars(None),
    )


def unsubscribed(email: ReaderEmail) -> EmailMultiAlternatives:
    """An email to the reader's unsubscribe address stopped their digests: the way back."""
    return _message(
        email.subscriber,
        "unsubscribed",
        resubscribe_url=f"{settings.SITE_URL}{unsubscribe.unsubscribe_url(email.subscriber)}",
    )


BUILDERS = {
    ReaderEmail.Kind.WELCOME: welcome,
    ReaderEmail.Kind.TRIAL_ENDING: trial_ending,
    ReaderEmail.Kind.PAYMENT_FAILED: payment_failed,
    ReaderEmail.Kind.PAYMENT_ACTION_REQUIRED: payment_action_required,
    ReaderEmail.Kind.MEMBERSHIP_ENDED: membership_ended,
    ReaderEmail.Kind.RENEWAL_NOTICE: renewal_notice,
    ReaderEmail.Kind.WIN_BACK: win_back,
    ReaderEmail.Kind.GIFT_ENDING: gift_ending,
    ReaderEmail.Kind.GIFT_ENDED: gift_ended,
    ReaderEmail.Kind.UNSUBSCRIBED: unsubscribed,
}


def build(email: ReaderEmail) -> EmailMultiAlternatives:
    return BUILDERS[ReaderEmail.Kind(email.kind)](email)
