"""Moving content types from one app to another, for the migrations that move models.

Not a migration (the loader skips modules whose name starts with "_"):
delivery.0002 and delivery.0003 share it.

A content type is (app_label, model); permissions, admin log entries and
every staff group's grants hang on it. Renaming the old app's row keeps
them all. Where Django made the new app's row already (a run that stopped
between the migrations), the old row's grants and history are merged into
it and the old row deleted.
"""


def move_content_types(apps, models, from_label, to_label):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    for model in models:
        old = ContentType.objects.filter(app_label=from_label, model=model).first()
        if old is None:
            continue
        new = ContentType.objects.filter(app_label=to_label, model=model).first()
        if new is None:
            old.app_label = to_label
            old.save(update_fields=["app_label"])
            continue
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
