"""What readers and Stripe do to readers and memberships: one module per domain.

A `do_*` function is a public write: it runs in one transaction, declared on
the function (or, where a call to Stripe must not hold a database lock,
around the part that writes, and its docstring says so). The emails an
action causes are claimed in that transaction (ReaderEmail, unique per
cause) and queued to Celery only once it commits. Views, webhook handlers
and tasks call these; nothing else writes a membership.

- checkout:      signup, the Stripe customer and Checkout Session, fulfilment
- stripe_sync:   mirroring subscriptions from Stripe, trial and invoice events,
                 periodic reconciliation
- lifecycle:     the paid year: renewal notice, cancel or keep, pause, win-back
- gifts:         gift subscriptions: bought once, delivered, redeemed, reminded
- imports:       readers from a CSV, subscriptions already at Stripe
- account:       sign-in links, the reader's own settings, the billing portal
- reader_data:   the reader's data: export and deletion
- reader_emails: claiming an email for a cause and queuing it after commit
- referrals:     referrals made at signup, rewards at the first payment, take-backs
- staff:         what staff and their API keys do: complimentary readers, edits
"""
