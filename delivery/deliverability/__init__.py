"""Deliverability: bounces, complaints and mailto: unsubscribes, over plain SMTP and from an ESP.

Three ways a result arrives, one way it is applied (suppression.do_record):

- **At send time**, the SMTP server refuses a recipient with a 5xx answer
  (the batch's ledger hands the refusals over: suppression.record_refusals).
- **Later, by email**, to the VERP envelope sender (verp.verp_address)
  and so into the bounce mailbox (BOUNCE_MAILBOX_URL, IMAP or POP3), read by
  `mailbox.process_mailbox` (`manage.py process_bounces`, and beat every 5 minutes):
  delivery status notifications (RFC 3464, and the older formats mail
  servers still send) are parsed by flufl.bounce, Mailman's bounce library;
  spam complaints arrive as ARF reports (RFC 5965) from feedback loops; and
  readers' "unsubscribe" emails to the List-Unsubscribe mailto: address.
- **From the ESP's webhook** (tracking.py, django-anymail).

A hard bounce suppresses the address at once, a complaint too; soft bounces
(a full mailbox, a refused message) after BOUNCE_SOFT_LIMIT of them within
BOUNCE_SOFT_DAYS. Delay warnings ("will keep trying") change nothing. Each
result is a BounceEvent row, and the edition's send health is counted from
them as they arrive (health.check_health): staff are emailed past the alert rates
and, past the pause rate for complaints, the rest of the day's sends wait
(SendPause) until staff resume them.

Anyone can send mail to the bounce mailbox, and a reader can file reports
about their own digests. So a report counts only through a signed address
of ours: a bounce or complaint through the VERP address it was sent to (or
names), an unsubscribe through the reader's signed mailto: address
(verp.unsubscribe_mailto). One that names a reader's address alone,
or comes from a From line, is kept for a person, never applied; without
VERP (BOUNCE_DOMAIN unset) that is every bounce and complaint in the
mailbox, which `check --deploy` warns about (domain_checks.py). A reader weighs once in an
edition's send health however many complaints they file, and only an
edition whose mornings are still under way can pause the day's sends.

Logs name readers and deliveries by id, never by address.
"""
