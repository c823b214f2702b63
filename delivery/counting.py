"""Counting sending events for the metrics, in the transaction that records them.

`add("digests_sent", 100, carrier="default")` adds to one EventCount row
(created on first use). Callers pass the number of rows their write really
changed, inside the same transaction: the count moves with the rows, and a
write retried after a lost connection (delivery.leases.durably) that had
landed the first time changes no row and adds nothing.

The count row is written last in its transaction, so the lock it takes
(two workers adding to the same count wait for each other) is held only
for the commit.
"""

from django.db import IntegrityError, transaction
from django.db.models import F

from delivery.models import EventCount


def encode_labels(labels: dict[str, str]) -> str:
    """The labels as EventCount stores them: "a=1,b=2", sorted by name."""
    for name, value in labels.items():
        if "," in value or "=" in value:
            raise ValueError(f"Label {name}={value!r}: a value cannot hold ',' or '='.")
    return ",".join(f"{name}={labels[name]}" for name in sorted(labels))


def decode_labels(text: str) -> dict[str, str]:
    if not text:
        return {}
    return dict(pair.split("=", 1) for pair in text.split(","))


def add(name: str, amount: int, **labels: str) -> None:
    """Add `amount` to the count `name` with these labels (nothing for 0)."""
    if amount <= 0:
        return
    key = encode_labels(labels)
    rows = EventCount.objects.filter(name=name, labels=key)
    if rows.update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            EventCount.objects.create(name=name, labels=key, value=amount)
    except IntegrityError:
        # Another process created it first.
        rows.update(value=F("value") + amount)


def counts(names: list[str]) -> dict[str, dict[str, int]]:
    """{name: {labels: value}} for these names."""
    found: dict[str, dict[str, int]] = {name: {} for name in names}
    for name, labels, value in EventCount.objects.filter(name__in=names).values_list(
        "name", "labels", "value"
    ):
        found[name][labels] = value
    return found
