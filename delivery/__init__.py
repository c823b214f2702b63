"""Delivery: from "this reader is due this content" to "the message left, and what became of it".

The Delivery table is the record of what was sent: one row per (edition,
reader), unique, created when the send starts, claimed by one sender before
the email goes out, and marked sent or failed afterwards. Everything here is
safe to run twice, from two workers at once, or again after a crash:

- an edition exists once per date (unique), its audience is fixed once;
- a batch claims only `queued` rows, so two senders never send the same row;
- rows are marked `sent` every DIGEST_CHECKPOINT_EVERY emails, so a worker killed
  mid-batch leaves at most that many sent-but-unmarked rows; they stay
  `sending` until the dead sender's lease runs out (delivery.leases, about
  a minute), and are then sent again. That is the one, bounded, way a
  reader can get a digest twice. A sender that loses its database
  connection retries the write on a new one instead of giving up.

The modules, in the order a digest meets them: scheduler (each reader's
morning) and by_hand (the by-hand send) write the audience (audience), whose
batches (batches) are claimed and sent over the wire (wire/: MIME, pipelined
SMTP, the DKIM-signing backend, the fallback carrier) under leases (leases);
recovery hands on what a dead sender or a lost task left; deliverability/
applies what comes back (bounces, complaints, unsubscribes) and keeps send
health; send_report tells the editors' desk how it went, and actions are
staff's resends and resumptions. docs/architecture.md has the whole path.
"""
