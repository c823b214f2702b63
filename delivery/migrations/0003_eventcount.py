"""EventCount moves in from the newsletter app with its table, and its content type follows.

Like 0001 and 0002 for the send's other models (newsletter.0016 took it out
of the newsletter app's state).
"""

from django.db import migrations, models

from delivery.migrations._content_types import move_content_types


def forwards(apps, schema_editor):
    move_content_types(apps, ["eventcount"], "newsletter", "delivery")


def backwards(apps, schema_editor):
    move_content_types(apps, ["eventcount"], "delivery", "newsletter")


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0002_move_content_types'),
        ('newsletter', '0016_eventcount_leaves_for_the_delivery_app'),
    ]

    operations = [
        # Its table stays as it is; only the app that owns it changes.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='EventCount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=64)),
                        ('labels', models.CharField(blank=True, max_length=200)),
                        ('value', models.PositiveBigIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'newsletter_eventcount',
                        'constraints': [models.UniqueConstraint(fields=('name', 'labels'), name='event_count_once')],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
