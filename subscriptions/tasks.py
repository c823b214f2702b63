"""Beat's periodic tasks for readers and billing: each runs actions, and is safe to run twice.

The work the actions queue (emails, Stripe calls) is in
subscriptions/side_effects.py, which imports no action; the worker
registers those tasks with these, as this module imports it.
"""

import logging

from celery import shared_task

from subscriptions import side_effects, stripe_api
from subscriptions.actions import gifts, lifecycle, stripe_sync, teams

logger = logging.getLogger(__name__)


@shared_task
def reconcile_memberships() -> int:
    """Re-fetch recently changed and suspicious subscriptions from Stripe."""
    if not stripe_api.billing_configured():
        return 0
    checked = 0
    for membership_id in stripe_sync.memberships_to_reconcile():
        try:
            stripe_sync.do_reconcile_membership(membership_id)
        except stripe_api.StripeError as error:
            # One reader's trouble (or Stripe's) must not stop the others;
            # the next run tries again.
            logger.warning("Reconciling membership %s failed: %s", membership_id, error)
            continue
        checked += 1
    for team_id in teams.teams_to_reconcile():
        try:
            teams.do_reconcile_team(team_id)
        except stripe_api.StripeError as error:
            logger.warning("Reconciling team %s failed: %s", team_id, error)
            continue
        checked += 1
    logger.info("Reconciled %d memberships and teams with Stripe", checked)
    return checked


@shared_task
def billing_lifecycle() -> dict[str, int]:
    """The hourly check of the paid year: renewal notices due, then win-back emails due.

    Each is claimed once per cause, so running it again (or alongside the
    invoice.upcoming webhook) sends nothing twice.
    """
    if not stripe_api.billing_configured():
        return {"renewal_notices": 0, "win_backs": 0}
    notices = 0
    for subscription_id in lifecycle.renewals_due_notice():
        try:
            outcome = lifecycle.do_renewal_notice(subscription_id)
        except stripe_api.StripeError as error:
            # The next hour's run tries again; one reader's trouble stops no one else.
            logger.warning("Renewal notice for %s failed: %s", subscription_id, error)
            continue
        notices += outcome == "renewal notice queued"
    win_backs = sum(lifecycle.do_win_back(pk) for pk in lifecycle.win_back_candidates())
    for gift_id in gifts.gifts_to_deliver():
        side_effects.deliver_gift.delay(gift_id)
    gifts.do_gift_reminders()
    logger.info("Billing lifecycle: %d renewal notices, %d win-back emails", notices, win_backs)
    return {"renewal_notices": notices, "win_backs": win_backs}
