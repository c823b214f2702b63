"""Backups to S3-compatible storage, through a real S3 server on loopback (moto's server mode).

BACKUP_TARGET=s3://bucket/prefix; boto3 finds the server by AWS_ENDPOINT_URL,
as it would MinIO or Backblaze B2. Retention deletes only our archives under
the prefix; a restore of `latest` fetches the newest from there.
"""

import datetime
import io

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from moto.server import ThreadedMotoServer

from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND
from testing.commands import run_manage
from testing.databases import another_database, pointed_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.clock(MONDAY_BEFORE_SEND)]

BUCKET = "briefing-backups"


@pytest.fixture
def s3_server(monkeypatch):
    """A local S3-compatible server, and the AWS_* variables boto3 reads to reach it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    environment = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "backup-tests",
        "AWS_SECRET_ACCESS_KEY": "backup-tests-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        # No instance metadata service to ask, and no operator's profile to read.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield environment
    server.stop()


def keys() -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET)
    return sorted(entry["Key"] for entry in listed.get("Contents", []))


def test_backups_go_to_the_bucket_keep_the_newest_and_restore_from_there(
    s3_server, settings, tmp_path, clock
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_TARGET = f"s3://{BUCKET}/nightly"
    settings.BACKUP_KEEP = 2
    boto3.client("s3").put_object(Bucket=BUCKET, Key="nightly/README.txt", Body=b"ours, not yours")
    make_subscriber("ada@example.com")
    for day in range(3):
        if day == 2:
            make_subscriber("grace@example.com")  # only in the newest backup
        output = io.StringIO()
        call_command("backup", stdout=output)
        assert f"Backed up to s3://{BUCKET}/nightly/briefing-backup-" in output.getvalue()
        clock.shift(datetime.timedelta(days=1))

    assert keys() == [
        "nightly/README.txt",
        "nightly/briefing-backup-20261201T090000Z.tar",
        "nightly/briefing-backup-20261202T090000Z.tar",
    ]
    listing = io.StringIO()
    call_command("backup", "--list", stdout=listing)
    assert listing.getvalue().split() == [
        f"s3://{BUCKET}/nightly/briefing-backup-20261201T090000Z.tar",
        f"s3://{BUCKET}/nightly/briefing-backup-20261202T090000Z.tar",
    ]

    with another_database(tmp_path) as elsewhere:
        result = run_manage(
            "restore",
            "latest",
            DATABASE_URL=elsewhere.url,
            MEDIA_ROOT=str(tmp_path / "media-elsewhere"),
            BACKUP_TARGET=settings.BACKUP_TARGET,
            DJANGO_DEBUG="1",
            **s3_server,
        )
        assert result.returncode == 0, result.stderr
        assert "briefing-backup-20261202T090000Z.tar" in result.stdout
        with pointed_at(elsewhere.name):
            assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
                "ada@example.com",
                "grace@example.com",
            ]


def test_an_unreachable_bucket_fails_the_backup_with_its_name(s3_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_TARGET = "s3://no-such-bucket/nightly"
    refusal = r"Backup failed: .*s3://no-such-bucket/nightly"

    with pytest.raises(CommandError, match=refusal) as failed:
        call_command("backup", stdout=io.StringIO())

    assert "NoSuchBucket" in str(failed.value)
