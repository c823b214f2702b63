"""manage.py import_stripe: readers and memberships for the subscriptions already at Stripe."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions import stripe_api
from subscriptions.actions.imports import do_import_stripe


class Command(BaseCommand):
    help = (
        "Create readers and memberships for the trialing, active and past_due subscriptions at "
        "Stripe on the configured price (--all-prices: any). Safe to run again: what is "
        "already here is synced. Sends no email."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all-prices", action="store_true", help="Every live subscription, on any price."
        )
        parser.add_argument("--dry-run", action="store_true", help="Report; write nothing.")

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = do_import_stripe(
                all_prices=bool(options["all_prices"]), dry_run=bool(options["dry_run"])
            )
        except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
            raise CommandError(f"Stripe: {error}") from None
        for line in report.lines():
            self.stdout.write(line)
        for email in report.created:
            self.stdout.write(f"  {'would import' if report.dry_run else 'imported'} {email}")
