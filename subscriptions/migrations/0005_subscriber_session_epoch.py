"""Subscriber.session_epoch: "Sign out everywhere", and an end to older sessions.

Existing readers start at epoch 1 while new ones start at 0. Sessions made
before this change carry no epoch, which counts as 0, so every one of them
ends here: among them any that a checkout handed out for an address its
owner never proved (the pre-account hijack). Those readers sign in again by
link, once.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0004_reader_send_time_and_pause"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscriber",
            name="session_epoch",
            field=models.PositiveIntegerField(default=1, editable=False),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="subscriber",
            name="session_epoch",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
