"""The dashboard's figures: for each, who may see it, its table and its chart.

metrics computes the numbers; this turns them into what a page shows (a
chart, a table with the same numbers) and what a CSV carries (the raw
values, no formatting). The views pick figures from FIGURES by slug.
"""

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.utils.safestring import SafeString

from dashboard import charts, daily, metrics, referrals
from dashboard.charts import Series

# Readers' billing and growth: staff who may see memberships (the billing
# permission). Editors have the newsletter's and delivery's permissions only.
BILLING = "subscriptions.view_membership"
# How sends went: the editors see it on the desk already.
SENDING = "delivery.view_delivery"

Cell = str | int | float | None


@dataclass(frozen=True)
class Rendered:
    chart: SafeString
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    # Shown above the chart, e.g. "MRR $1,234.50".
    headline: str = ""


@dataclass(frozen=True)
class Figure:
    slug: str
    title: str
    permission: str
    explanation: str
    build: Callable[[metrics.DateRange, datetime.datetime], Rendered]


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def rate(value: float | None) -> str:
    return "—" if value is None else charts.percent(value)


def _short(day: datetime.date) -> str:
    return f"{day:%b} {day.day}"


SHORT_STATES = {"Past due, in grace": "Past due", "Bounced or complained": "Bounced"}


def _readers(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    tallies, at = daily.readers_now(now)
    local = at.astimezone(metrics.newsroom_zone())
    return Rendered(
        charts.bar_chart(
            "readers",
            title="Readers by state now",
            description=", ".join(f"{t.label}: {t.count}" for t in tallies),
            # Short enough not to overlap under their bars; the table says them whole.
            labels=[SHORT_STATES.get(t.label, t.label) for t in tallies],
            series=[Series("Readers", [t.count for t in tallies])],
            x_label="State",
            y_label="Readers",
        ),
        ["State", "Readers"],
        [[t.label, t.count] for t in tallies],
        headline=(
            f"{sum(t.count for t in tallies):,} readers "
            f"(counted {local:%b} {local.day}, {local:%H:%M} {local.tzinfo})"
        ),
    )


def _trials(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    tallies = metrics.new_trials_per_day(dates, now)
    days = dates.days()
    return Rendered(
        charts.bar_chart(
            "trials",
            title="New trials per day",
            description=f"{sum(t.count for t in tallies)} trials started, {days[0]} to {days[-1]}.",
            labels=[_short(day) for day in days],
            series=[Series("Trials", [t.count for t in tallies])],
            x_label="Day (newsroom time)",
            y_label="Trials started",
        ),
        ["Day", "Trials started"],
        [[t.label, t.count] for t in tallies],
        headline=f"{sum(t.count for t in tallies):,} trials",
    )


def _conversion(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    cohorts = metrics.conversion_by_cohort(dates, now)
    return Rendered(
        charts.bar_chart(
            "conversion",
            title="Trial-to-paid conversion by signup week",
            description="Of each week's trials that have ended, the share that went on to pay.",
            labels=[_short(c.week) for c in cohorts],
            series=[Series("Converted", [c.rate or 0.0 for c in cohorts])],
            x_label="Week the trial started (Monday)",
            y_label="Converted",
            fmt=charts.percent,
        ),
        ["Week", "Trials", "Paid", "Still in trial", "Ended unpaid", "Conversion"],
        [
            [
                c.week.isoformat(),
                c.trials,
                c.converted,
                c.still_trialing,
                c.ended_unpaid,
                rate(c.rate),
            ]
            for c in cohorts
        ],
    )


def _churn(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    flows = metrics.churn_per_month(dates, now, mirror=daily.revenue_now(now))
    return Rendered(
        charts.bar_chart(
            "churn",
            title="Churn per month",
            description="Readers who stopped paying each month, of those paying when it began.",
            labels=[f"{f.period:%b %Y}" for f in flows],
            series=[Series("Churn", [f.churn_rate or 0.0 for f in flows])],
            x_label="Month",
            y_label="Stopped paying",
            fmt=charts.percent,
        ),
        ["Month", "Paying at start", "Stopped paying", "Churn"],
        [[f"{f.period:%Y-%m}", f.paying_at_start, f.stopped, rate(f.churn_rate)] for f in flows],
    )


def _revenue(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    now_revenue = daily.revenue_now(now)
    flows = metrics.churn_per_month(dates, now, mirror=now_revenue)
    return Rendered(
        charts.line_chart(
            "revenue",
            title="Monthly recurring revenue",
            description=(
                f"MRR {money(now_revenue.mrr_cents)}, ARR {money(now_revenue.arr_cents)} "
                f"from {now_revenue.paying} paying readers."
            ),
            labels=[f"{f.period:%b %Y}" for f in flows],
            series=[Series("MRR", [f.mrr_cents_at_end / 100 for f in flows])],
            x_label="Month (at its end, or now)",
            y_label="MRR ($)",
        ),
        ["Month", "MRR (cents)", "ARR (cents)"],
        [[f"{f.period:%Y-%m}", f.mrr_cents_at_end, f.arr_cents_at_end] for f in flows],
        headline=(
            f"MRR {money(now_revenue.mrr_cents)} · ARR {money(now_revenue.arr_cents)} · "
            f"{now_revenue.paying:,} paying"
        ),
    )


def _growth(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    flows = metrics.net_growth_per_week(dates, now, mirror=daily.revenue_now(now))
    return Rendered(
        charts.bar_chart(
            "growth",
            title="Net growth of paying readers per week",
            description="Readers who started paying, who stopped, and the difference, each week.",
            labels=[_short(f.period) for f in flows],
            series=[
                Series("Started paying", [f.started for f in flows]),
                Series("Stopped paying", [-f.stopped for f in flows]),
                Series("Net", [f.net for f in flows]),
            ],
            x_label="Week (Monday)",
            y_label="Readers",
        ),
        ["Week", "Started paying", "Stopped paying", "Net"],
        [[f.period.isoformat(), f.started, f.stopped, f.net] for f in flows],
        headline=f"Net {sum(f.net for f in flows):+,}",
    )


def _referrals(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    weeks = referrals.referrals_per_week(dates)
    return Rendered(
        charts.bar_chart(
            "referrals",
            title="Referrals per week",
            description=(
                "Readers who signed up by another reader's link, and referred readers "
                "whose first payment succeeded, each week."
            ),
            labels=[_short(w.week) for w in weeks],
            series=[
                Series("Signed up by a link", [w.signed_up for w in weeks]),
                Series("First paid", [w.paying for w in weeks]),
            ],
            x_label="Week (Monday, newsroom time)",
            y_label="Readers",
        ),
        ["Week", "Signed up by a link", "First paid"],
        [[w.week.isoformat(), w.signed_up, w.paying] for w in weeks],
        headline=(
            f"{sum(w.signed_up for w in weeks):,} referred, {sum(w.paying for w in weeks):,} paying"
        ),
    )


def _top_referrers(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    top = referrals.top_referrers(dates)
    return Rendered(
        charts.bar_chart(
            "top-referrers",
            title=f"The {referrals.TOP_REFERRERS} readers who brought the most",
            description="Referred readers who first paid in the period, by their referrer.",
            labels=[t.email[:30] for t in top] or ["No referrals"],
            series=[Series("Paying referrals", [float(t.paying) for t in top] or [0.0])],
            x_label="Referrer",
            y_label="Paying referrals",
        ),
        ["Referrer", "Signed up by their link", "First paid", "Free months earned"],
        [[t.email, t.signed_up, t.paying, t.months_earned] for t in top],
    )


def counted(dates: metrics.DateRange, now: datetime.datetime) -> str:
    """When the sends shown were counted, in the newsroom's zone."""
    at = metrics.counted_at(dates, now)
    if at is None:
        return "Not counted yet"
    zone = metrics.newsroom_zone()
    local = at.astimezone(zone)
    return f"Counted {local:%b} {local.day}, {local:%H:%M} ({zone.key})"


def _editions(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    sends = metrics.edition_sends(dates, now)
    labels = [_short(s.date) for s in sends] or ["No editions"]

    def values(field: str) -> list[float]:
        return [getattr(s, field) for s in sends] or [0]

    return Rendered(
        charts.bar_chart(
            "editions",
            title=f"The last {metrics.EDITIONS_SHOWN} editions",
            description=(
                "Each edition's digests delivered, failed, bounced and missed, "
                "and the spam complaints and unsubscribes after it."
            ),
            labels=labels,
            series=[
                Series("Delivered", values("delivered")),
                Series("Failed", values("failed")),
                Series("Bounced", values("bounced")),
                Series("Missed", values("missed")),
                Series("Complaints (48 h)", values("complaints")),
                Series("Unsubscribes (48 h)", values("unsubscribes")),
            ],
            x_label="Edition",
            y_label="Digests",
        ),
        [
            "Edition",
            "Delivered",
            "Failed",
            "Bounced",
            "Missed",
            "Complaints within 48 h",
            "Unsubscribes within 48 h",
        ],
        [
            [
                s.date.isoformat(),
                s.delivered,
                s.failed,
                s.bounced,
                s.missed,
                s.complaints,
                s.unsubscribes,
            ]
            for s in sends
        ],
        headline=counted(dates, now),
    )


def minutes(duration: datetime.timedelta | None) -> float | None:
    return None if duration is None else round(duration.total_seconds() / 60, 1)


def _zones(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    zones = metrics.zone_sends(dates, now)
    labels = [z.time_zone for z in zones] or ["No sends"]
    return Rendered(
        charts.bar_chart(
            "zones",
            title="Send duration by time zone",
            description=(
                "Minutes from each zone's send moment to its last digest handed to the "
                f"mail server, middle and longest of the last {metrics.EDITIONS_SHOWN} editions."
            ),
            labels=labels,
            series=[
                Series("Median minutes", [minutes(z.median_duration) or 0.0 for z in zones] or [0]),
                Series(
                    "Longest minutes", [minutes(z.longest_duration) or 0.0 for z in zones] or [0]
                ),
            ],
            x_label="Readers' time zone",
            y_label="Minutes",
        ),
        [
            "Time zone",
            "Digests",
            "Delivered",
            "Failed",
            "Bounced",
            "Missed",
            "Delivered share",
            "Median send (minutes)",
            "Longest send (minutes)",
        ],
        [
            [
                z.time_zone,
                z.deliveries,
                z.delivered,
                z.failed,
                z.bounced,
                z.missed,
                rate(z.delivered_rate),
                minutes(z.median_duration),
                minutes(z.longest_duration),
            ]
            for z in zones
        ],
        headline=counted(dates, now),
    )


def _most_read(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    stories = metrics.most_read(dates)
    return Rendered(
        charts.bar_chart(
            "most-read",
            title="Most-read stories of the week",
            description="Clicks on each story's link in the digests of the last 7 days.",
            labels=[story.title[:40] for story in stories] or ["No clicks"],
            series=[Series("Clicks", [float(story.clicks) for story in stories] or [0.0])],
            x_label="Story",
            y_label="Clicks",
        ),
        ["Story", "Clicks", "Readers who clicked"],
        [[story.title, story.clicks, story.readers] for story in stories],
        headline=(
            ""
            if settings.CLICK_TRACKING
            else "Click counting is off (CLICK_TRACKING): no clicks are recorded."
        ),
    )


def _choices(dates: metrics.DateRange, now: datetime.datetime) -> Rendered:
    choices = metrics.reader_choices(now)
    rows: list[list[Cell]] = [["Section", t.label, t.count] for t in choices.sections]
    rows.append(["Every section, new ones included", "", choices.every_section])
    rows += [["Format", t.label, t.count] for t in choices.formats]
    rows += [["Day", t.label, t.count] for t in choices.days]
    formats = ", ".join(f"{t.count:,} {t.label.lower()}" for t in choices.formats)
    return Rendered(
        charts.bar_chart(
            "choices",
            title="Readers per section",
            description="Readers who get the digest and follow each section "
            "(those following every section included).",
            labels=[t.label for t in choices.sections] or ["No sections"],
            series=[Series("Readers", [float(t.count) for t in choices.sections] or [0.0])],
            x_label="Section",
            y_label="Readers",
        ),
        ["Choice", "Of", "Readers"],
        rows,
        headline=f"Now: {formats}",
    )


FIGURES = {
    figure.slug: figure
    for figure in [
        Figure(
            "readers",
            "Readers by state",
            BILLING,
            "Every reader once, in the state that decides whether they get the digest.",
            _readers,
        ),
        Figure(
            "revenue",
            "Revenue",
            BILLING,
            "MRR and ARR from what Stripe charges paying (active or past due) readers, "
            "discounts included.",
            _revenue,
        ),
        Figure(
            "growth",
            "Net growth",
            BILLING,
            "Readers who started paying (a trial converted, or a reader came back) "
            "against those who stopped.",
            _growth,
        ),
        Figure("trials", "New trials", BILLING, "Trials started each day.", _trials),
        Figure(
            "conversion",
            "Trial-to-paid conversion",
            BILLING,
            "By the week the trial started; trials still running are not counted as lost.",
            _conversion,
        ),
        Figure(
            "churn",
            "Churn",
            BILLING,
            "Readers who stopped paying in a month, of those paying when it began.",
            _churn,
        ),
        Figure(
            "referrals",
            "Referrals",
            BILLING,
            "Readers brought by other readers' links, and those of them who paid.",
            _referrals,
        ),
        Figure(
            "top-referrers",
            "Top referrers",
            BILLING,
            "The readers whose referrals first paid in the period, with the free months "
            "they earned (rewards taken back after a refund are not counted).",
            _top_referrers,
        ),
        Figure(
            "editions",
            "Editions",
            SENDING,
            "How each digest went, and readers who unsubscribed within 48 hours after getting it.",
            _editions,
        ),
        Figure(
            "most-read",
            "Most-read stories",
            SENDING,
            "The week's stories by clicks on their links in the digest (CLICK_TRACKING); "
            "opens are not counted: mail privacy proxies make them meaningless.",
            _most_read,
        ),
        Figure(
            "choices",
            "Readers' choices",
            SENDING,
            "What readers who get the digest chose: the sections they follow, "
            "full stories or headlines, and their days.",
            _choices,
        ),
        Figure(
            "zones",
            "Sends by zone",
            SENDING,
            "Each readers' zone over the same editions: how long its send takes, "
            "and where sending goes wrong.",
            _zones,
        ),
    ]
}


def can_see(user: AbstractUser | AnonymousUser, figure: Figure) -> bool:
    # The billing permission shows everything; the sending figures need only
    # the permission to view deliveries, which the Editors group has.
    return user.has_perm(BILLING) or user.has_perm(figure.permission)


def visible(user: AbstractUser | AnonymousUser) -> list[Figure]:
    """The figures `user` may see, in the page's order."""
    return [figure for figure in FIGURES.values() if can_see(user, figure)]
