from django.db import migrations, models


def drop_repeated_complaints(apps, schema_editor):
    """Keep each reader's first complaint about an edition; the rest were repeats.

    Before this constraint a reader could file any number of complaints about
    one edition (each report with a new Message-ID) and weigh on its send
    health as many times.
    """
    BounceEvent = apps.get_model("newsletter", "BounceEvent")
    seen = set()
    repeated = []
    complaints = BounceEvent.objects.filter(kind="complaint", edition__isnull=False)
    rows = complaints.order_by("created_at", "pk").values_list("pk", "subscriber_id", "edition_id")
    for pk, subscriber_id, edition_id in rows.iterator():
        if (subscriber_id, edition_id) in seen:
            repeated.append(pk)
        else:
            seen.add((subscriber_id, edition_id))
    BounceEvent.objects.filter(pk__in=repeated).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0012_audience_in_chunks"),
        ("subscriptions", "0007_send_slot_index_by_id"),
    ]

    operations = [
        migrations.RunPython(drop_repeated_complaints, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="bounceevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("edition__isnull", False), ("kind", "complaint")),
                fields=("subscriber", "edition"),
                name="bounce_event_complaint_once",
            ),
        ),
    ]
