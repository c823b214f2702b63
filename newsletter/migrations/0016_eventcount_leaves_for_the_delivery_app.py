"""EventCount, the send's event counts the metrics read, moves to the delivery app.

Its table stays (newsletter_eventcount, Meta.db_table): state only, as
0015 did for the send's other models; delivery.0003 takes it in.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('newsletter', '0015_delivery_models_leave_for_the_delivery_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name='eventcount',
                    name='event_count_once',
                ),
                migrations.DeleteModel(
                    name='EventCount',
                ),
            ],
        ),
    ]
