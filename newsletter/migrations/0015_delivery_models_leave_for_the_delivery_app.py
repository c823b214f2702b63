"""Delivery, SendSlot, BounceEvent, SendAlert and SendPause move to the delivery app.

Their tables stay (the delivery app's models name them in Meta.db_table):
this migration changes Django's state only, and writes nothing to the
database. delivery.0001_initial takes them into the delivery app's state,
delivery.0002_move_content_types their content types and permissions.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('newsletter', '0014_event_counts'),
    ]

    operations = [
        # The tables stay as they are: only Django's idea of which app owns them moves.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveIndex(
                    model_name='bounceevent',
                    name='newsletter__subscri_04dff1_idx',
                ),
                migrations.RemoveConstraint(
                    model_name='bounceevent',
                    name='bounce_event_once_per_report',
                ),
                migrations.RemoveConstraint(
                    model_name='bounceevent',
                    name='bounce_event_complaint_once',
                ),
                migrations.RemoveIndex(
                    model_name='delivery',
                    name='newsletter__subscri_c1bf1f_idx',
                ),
                migrations.RemoveIndex(
                    model_name='delivery',
                    name='newsletter__status_6bb3f3_idx',
                ),
                migrations.RemoveIndex(
                    model_name='delivery',
                    name='delivery_edition_status_id',
                ),
                migrations.RemoveConstraint(
                    model_name='delivery',
                    name='delivery_unique_per_reader',
                ),
                migrations.RemoveConstraint(
                    model_name='sendalert',
                    name='send_alert_once',
                ),
                migrations.RemoveField(
                    model_name='sendpause',
                    name='edition',
                ),
                migrations.RemoveField(
                    model_name='sendpause',
                    name='resumed_by',
                ),
                migrations.RemoveConstraint(
                    model_name='sendslot',
                    name='send_slot_once',
                ),
                migrations.DeleteModel(
                    name='SendSlot',
                ),
                migrations.RemoveField(
                    model_name='bounceevent',
                    name='delivery',
                ),
                migrations.RemoveField(
                    model_name='bounceevent',
                    name='edition',
                ),
                migrations.RemoveField(
                    model_name='bounceevent',
                    name='subscriber',
                ),
                migrations.RemoveField(
                    model_name='delivery',
                    name='edition',
                ),
                migrations.RemoveField(
                    model_name='delivery',
                    name='subscriber',
                ),
                migrations.RemoveField(
                    model_name='sendalert',
                    name='edition',
                ),
                migrations.DeleteModel(
                    name='SendPause',
                ),
                migrations.DeleteModel(
                    name='BounceEvent',
                ),
                migrations.DeleteModel(
                    name='Delivery',
                ),
                migrations.DeleteModel(
                    name='SendAlert',
                ),
            ],
        ),
    ]
