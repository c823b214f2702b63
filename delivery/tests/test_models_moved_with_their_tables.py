"""The send's models moved to the delivery app: their tables, rows, grants and history stay.

Migrated back to before the move, rows are written with the newsletter
app's models as they were; migrated forward, the delivery app reads the same
rows in the same tables, and what hangs on their content types (a group's
permissions, a user's, the admin's history) comes along.
"""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from delivery.models import BounceEvent, Delivery, EventCount, SendAlert, SendPause, SendSlot
from newsletter.models import Edition
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)  # migrations run outside a transaction

BEFORE = [("newsletter", "0014_event_counts")]
MOVED = [Delivery, SendSlot, BounceEvent, SendAlert, SendPause, EventCount]


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def migrate():
    """migrate(targets) -> the apps as of there; the database ends fully migrated."""

    def to(targets):
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        executor.loader.build_graph()
        ContentType.objects.clear_cache()
        return executor.loader.project_state(targets).apps

    yield to
    to(latest())


def test_rows_grants_and_history_written_before_the_move_are_the_delivery_apps(migrate):
    ContentType.objects.get_for_models(*MOVED)  # as a database that has run has them
    before = {model: ContentType.objects.get_for_model(model).pk for model in MOVED}

    old = migrate(BEFORE)
    for model in MOVED:
        name = model._meta.model_name
        assert ContentType.objects.get(pk=before[model]).app_label == "newsletter", name
        assert not ContentType.objects.filter(app_label="delivery", model=name).exists()
    edition = Edition.objects.create(date="2026-12-01", cutoff=timezone.now())
    reader = make_subscriber()
    # Written as the newsletter app's model, in its table.
    delivery = old.get_model("newsletter", "Delivery").objects.create(
        edition_id=edition.pk, subscriber_id=reader.pk, status="sent", time_zone="Asia/Tokyo"
    )
    view_delivery = Permission.objects.get(
        content_type__app_label="newsletter", codename="view_delivery"
    )
    watchers = Group.objects.create(name="Send watchers")
    watchers.permissions.add(view_delivery)
    User.objects.create(username="watcher", is_staff=True).groups.add(watchers)
    auditor = User.objects.create(username="auditor", is_staff=True)
    auditor.user_permissions.add(view_delivery)
    entry = LogEntry.objects.create(
        user=auditor,
        content_type_id=before[Delivery],
        object_id=str(delivery.pk),
        object_repr="delivery",
        action_flag=CHANGE,
        change_message="Looked at it.",
    )

    migrate(latest())

    moved = Delivery.objects.get(pk=delivery.pk)
    assert (moved.edition, moved.subscriber, moved.status) == (edition, reader, "sent")
    assert Delivery._meta.db_table == "newsletter_delivery"
    for model in MOVED:
        content_type = ContentType.objects.get_for_model(model)
        assert (content_type.pk, content_type.app_label) == (before[model], "delivery")
    assert not ContentType.objects.filter(app_label="newsletter", model="delivery").exists()
    assert User.objects.get(username="watcher").has_perm("delivery.view_delivery")
    assert User.objects.get(username="auditor").has_perm("delivery.view_delivery")
    assert Group.objects.get(name="Send watchers").permissions.get().codename == "view_delivery"
    assert LogEntry.objects.get(pk=entry.pk).get_edited_object() == moved


def test_grants_on_a_content_type_made_twice_are_merged_into_the_delivery_apps(migrate):
    """Django made the delivery app's content type in a run that stopped before the move."""
    migrate(BEFORE)
    newsletter_slot = ContentType.objects.get(app_label="newsletter", model="sendslot")
    delivery_slot = ContentType.objects.create(app_label="delivery", model="sendslot")
    view_twice = Permission.objects.create(
        content_type=delivery_slot, codename="view_sendslot", name="Can view send slot"
    )
    calendar = Group.objects.create(name="Calendar keepers")
    calendar.permissions.add(
        Permission.objects.get(content_type=newsletter_slot, codename="view_sendslot"),
        Permission.objects.get(content_type=newsletter_slot, codename="change_sendslot"),
    )

    migrate(latest())

    assert ContentType.objects.get_for_model(SendSlot).pk == delivery_slot.pk
    assert not ContentType.objects.filter(pk=newsletter_slot.pk).exists()
    granted = Group.objects.get(name="Calendar keepers").permissions.all()
    assert {(p.content_type_id, p.codename) for p in granted} == {
        (delivery_slot.pk, "view_sendslot"),
        (delivery_slot.pk, "change_sendslot"),
    }
    assert granted.get(codename="view_sendslot").pk == view_twice.pk
