"""The moved models' content types follow them to the delivery app.

A content type is (app_label, model); permissions, admin log entries and
every staff group's grants hang on it. Renaming the newsletter's rows to
"delivery" keeps them: the Editors group still sees deliveries and send
slots (now delivery.view_delivery and delivery.view_sendslot), and each
delivery's history in the admin is still its own. Left alone, Django would
create new, empty content types for the delivery app and the old ones would
go stale with every grant on them.

On a new database neither exists yet when this runs (they are created after
the migrations): it changes nothing there.
"""

from django.db import migrations

from delivery.migrations._content_types import move_content_types

MOVED = ["delivery", "sendslot", "bounceevent", "sendalert", "sendpause"]


def forwards(apps, schema_editor):
    move_content_types(apps, MOVED, "newsletter", "delivery")


def backwards(apps, schema_editor):
    move_content_types(apps, MOVED, "delivery", "newsletter")


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
