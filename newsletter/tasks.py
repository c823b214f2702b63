"""Celery tasks: thin wrappers that take ids and call newsletter.sending.

Both are safe to run twice: the edition is unique per date and each reader's
Delivery row is claimed before the send.
"""

from celery import shared_task

from newsletter import sending


@shared_task
def send_morning_digest() -> int | None:
    edition = sending.build_morning_edition()
    if edition is None:
        return None
    send_edition.delay(edition.pk)
    return edition.pk


@shared_task
def send_edition(edition_id: int) -> None:
    sending.send_edition(edition_id)
