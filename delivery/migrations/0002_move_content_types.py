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

MOVED = ["delivery", "sendslot", "bounceevent", "sendalert", "sendpause"]


def move(apps, from_label, to_label):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    for model in MOVED:
        old = ContentType.objects.filter(app_label=from_label, model=model).first()
        if old is None:
            continue
        new = ContentType.objects.filter(app_label=to_label, model=model).first()
        if new is None:
            old.app_label = to_label
            old.save(update_fields=["app_label"])
            continue
        # Both exist (Django created the new one in a run that stopped before
        # this migration): the old one's grants and history move onto it.
        for permission in Permission.objects.filter(content_type=old):
            twin = Permission.objects.filter(content_type=new, codename=permission.codename).first()
            if twin is None:
                permission.content_type = new
                permission.save(update_fields=["content_type"])
                continue
            twin.group_set.add(*permission.group_set.all())
            twin.user_set.add(*permission.user_set.all())
            permission.delete()
        LogEntry.objects.filter(content_type=old).update(content_type=new)
        old.delete()


def forwards(apps, schema_editor):
    move(apps, "newsletter", "delivery")


def backwards(apps, schema_editor):
    move(apps, "delivery", "newsletter")


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
