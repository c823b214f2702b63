import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from newsletter.models import Article
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_working_credentials(settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    counts = (Article.objects.count(), Subscriber.objects.count())
    call_command("seed_demo")

    assert (Article.objects.count(), Subscriber.objects.count()) == counts
    # The demo's own articles and readers; dashboard.demo adds a year of
    # history beside them (dashboard/tests/test_demo.py).
    demo_articles = Article.objects.published().exclude(slug__startswith="archive-")
    assert demo_articles.count() == 5
    demo_readers = Subscriber.objects.exclude(email__endswith="@readers.example.com")
    assert demo_readers.entitled().count() == 3
    output = capsys.readouterr().out
    assert "username: editor  password: briefing-demo" in output
    user = authenticate(username="editor", password="briefing-demo")
    assert user is not None and user.is_staff


def test_seed_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("seed_demo")
    assert not Article.objects.exists()
