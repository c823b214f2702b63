import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from delivery import batches, by_hand, recovery, scheduler, tasks
from delivery.models import Delivery
from newsletter import editions, schedule
from newsletter.models import Edition


def aware_moment(value: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("give the moment with its offset, e.g. 2026-12-03T06:05:00+09:00")
    return moment


class Command(BaseCommand):
    help = (
        "Send every digest that is due at a moment (default now): each reader's morning "
        "in their own zone that has come and not been sent. Safe to run any number of times."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--at",
            type=aware_moment,
            help="The moment, ISO 8601 with its offset (default: now).",
        )
        parser.add_argument(
            "--date",
            type=datetime.date.fromisoformat,
            help=(
                "By hand: send this date's edition (YYYY-MM-DD) now to every entitled reader "
                "who has not had it, whatever their morning."
            ),
        )
        parser.add_argument(
            "--by-hand",
            action="store_true",
            help=(
                "Send the next edition (the one the editors' desk shows) now to every "
                "entitled reader who has not had it; --date names another."
            ),
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Send in this process instead of queueing the work for Celery workers.",
        )

    def handle(
        self,
        *args: str,
        at: datetime.datetime | None,
        date: datetime.date | None,
        by_hand: bool,
        sync: bool,
        **options: object,
    ) -> None:
        if by_hand and date is None:
            # The edition the editors' desk calls "next" (today's until its
            # morning send has started, then the next weekday's).
            date = editions.upcoming_edition_date()
        try:
            if date is not None:
                report = self.send_edition(date, sync)
            else:
                report = self.send_due(at or timezone.now(), sync)
        except batches.TransientSendError as error:
            raise CommandError(
                f"The mail server is unavailable ({error}). Nothing is lost: the unsent "
                "deliveries are queued again; run the command again later."
            ) from error
        if report is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Sent {report.sent}, failed {report.failed}, skipped {report.skipped}."
                    + (
                        f" Carried: {report.carried.get('default', 0)} by the main connection, "
                        f"{report.carried['fallback']} by the fallback."
                        if report.carried.get("fallback")
                        else ""
                    )
                )
            )

    def send_due(self, now: datetime.datetime, sync: bool) -> batches.BatchReport | None:
        due = list(scheduler.schedule_due_sends(now))
        self.stdout.write(
            f"At {now:%Y-%m-%d %H:%M %Z}: {len(due)} new batch"
            f"{'es' if len(due) != 1 else ''} of digests due."
        )
        if not sync:
            for edition_id, first_id, last_id in due:
                tasks.send_delivery_batch.delay(edition_id, first_id, last_id)
            self.stdout.write("Queued for the Celery workers.")
            return None
        # Also what an earlier run left unsent (a mail server that was down).
        unfinished = Edition.objects.filter(
            deliveries__status=Delivery.Status.QUEUED,
            deliveries__scheduled_for__lte=now,
        ).distinct()
        for edition in unfinished:
            recovery.requeue_expired_claims(edition, now)
            due += [(edition.pk, first, last) for first, last in batches.batch_ranges(edition)]
        report = batches.BatchReport()
        for edition_id, first_id, last_id in dict.fromkeys(due):
            report.add(batches.send_batch(edition_id, first_id, last_id))
            recovery.finish_if_done(edition_id)
        return report

    def send_edition(self, date: datetime.date, sync: bool) -> batches.BatchReport | None:
        if not schedule.is_weekday(date):
            raise CommandError(
                f"{date:%A %Y-%m-%d} is a weekend day: editions go out Monday to Friday."
            )
        edition = editions.build_edition(date)
        if edition is None:
            self.stdout.write(
                f"No edition for {date}: nothing published since the previous edition."
            )
            return None
        if edition.status == Edition.Status.HELD:
            raise CommandError(f"{edition} is held by the editors; release it in the admin first.")
        count = edition.ordered_articles().count()
        self.stdout.write(f"{edition}: {count} article{'s' if count != 1 else ''}.")
        if edition.send_started_at is not None:
            self.stdout.write(
                f"Its send started at {edition.send_started_at:%Y-%m-%d %H:%M %Z}; "
                "resuming any unfinished deliveries."
            )
        if not sync:
            tasks.send_edition.delay(edition.pk)
            self.stdout.write("Queued for the Celery workers.")
            return None
        return by_hand.send_edition_in_process(edition.pk)
