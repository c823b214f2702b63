"""The send's models, moved from the newsletter app with their tables.

Delivery, SendSlot, BounceEvent, SendAlert and SendPause were created by the
newsletter app's migrations (0001 to 0013), in tables named
newsletter_<model>. They keep those tables (Meta.db_table): this migration
only tells Django the delivery app now owns them, after
newsletter.0015 took them out of the newsletter app's state. No row is
copied, whatever the size of the deliveries table.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('newsletter', '0015_delivery_models_leave_for_the_delivery_app'),
        ('subscriptions', '0008_reader_email_unsubscribed'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay as they are: only Django's idea of which app owns them moves.
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Delivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed'), ('bounced', 'Bounced'), ('skipped', 'Skipped'), ('missed', 'Missed')], default='queued', max_length=20)),
                        ('scheduled_for', models.DateTimeField(blank=True, null=True)),
                        ('window_start', models.DateTimeField(blank=True, null=True)),
                        ('time_zone', models.CharField(blank=True, max_length=64)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('lease_until', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('carrier', models.CharField(blank=True, db_default='', default='', max_length=20)),
                        ('edition', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='newsletter.edition')),
                        ('subscriber', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='subscriptions.subscriber')),
                    ],
                    options={
                        'verbose_name_plural': 'deliveries',
                        'db_table': 'newsletter_delivery',
                    },
                ),
                migrations.CreateModel(
                    name='BounceEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('hard', 'Hard bounce'), ('soft', 'Soft bounce'), ('complaint', 'Spam complaint'), ('unsubscribe', 'Unsubscribed by email')], max_length=20)),
                        ('source', models.CharField(choices=[('smtp', 'SMTP answer at send time'), ('mailbox', 'Bounce mailbox'), ('esp', 'Email service provider')], max_length=20)),
                        ('report_id', models.CharField(blank=True, max_length=255)),
                        ('detail', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('edition', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bounce_events', to='newsletter.edition')),
                        ('subscriber', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='bounce_events', to='subscriptions.subscriber')),
                        ('delivery', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bounce_events', to='delivery.delivery')),
                    ],
                    options={
                        'db_table': 'newsletter_bounceevent',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='SendAlert',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('hard_bounces', 'Hard-bounce rate'), ('complaints', 'Complaint rate'), ('paused', 'Sends paused for complaints')], max_length=20)),
                        ('message', models.TextField()),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('dismissed_at', models.DateTimeField(blank=True, null=True)),
                        ('edition', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='newsletter.edition')),
                    ],
                    options={
                        'db_table': 'newsletter_sendalert',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='SendPause',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('date', models.DateField(help_text="The newsroom's date (DIGEST_TIMEZONE) it holds.")),
                        ('reason', models.TextField()),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('resumed_at', models.DateTimeField(blank=True, null=True)),
                        ('edition', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to='newsletter.edition')),
                        ('resumed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'newsletter_sendpause',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='SendSlot',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('date', models.DateField()),
                        ('time_zone', models.CharField(max_length=64)),
                        ('send_time', models.TimeField()),
                        ('scheduled_for', models.DateTimeField()),
                        ('outcome', models.CharField(choices=[('writing', 'Writing the audience'), ('queued', 'Queued'), ('missed', 'Missed: due while nothing could send'), ('nothing_new', 'Nothing published')], max_length=20)),
                        ('readers', models.PositiveIntegerField(default=0)),
                        ('lease_until', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'newsletter_sendslot',
                        'ordering': ['scheduled_for', 'time_zone'],
                        'constraints': [models.UniqueConstraint(fields=('date', 'time_zone', 'send_time'), name='send_slot_once')],
                    },
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(fields=['edition', 'status', 'id'], name='delivery_edition_status_id'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(fields=['subscriber', 'scheduled_for'], name='newsletter__subscri_c1bf1f_idx'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(fields=['status', 'scheduled_for'], name='newsletter__status_6bb3f3_idx'),
                ),
                migrations.AddConstraint(
                    model_name='delivery',
                    constraint=models.UniqueConstraint(fields=('edition', 'subscriber'), name='delivery_unique_per_reader'),
                ),
                migrations.AddIndex(
                    model_name='bounceevent',
                    index=models.Index(fields=['subscriber', 'kind', 'created_at'], name='newsletter__subscri_04dff1_idx'),
                ),
                migrations.AddConstraint(
                    model_name='bounceevent',
                    constraint=models.UniqueConstraint(condition=models.Q(('report_id', ''), _negated=True), fields=('report_id', 'subscriber'), name='bounce_event_once_per_report'),
                ),
                migrations.AddConstraint(
                    model_name='bounceevent',
                    constraint=models.UniqueConstraint(condition=models.Q(('edition__isnull', False), ('kind', 'complaint')), fields=('subscriber', 'edition'), name='bounce_event_complaint_once'),
                ),
                migrations.AddConstraint(
                    model_name='sendalert',
                    constraint=models.UniqueConstraint(fields=('edition', 'kind'), name='send_alert_once'),
                ),
            ],
        ),
    ]
