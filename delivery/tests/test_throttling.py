"""A server asking to slow down slows the send: nobody is refused or uses up an attempt."""

from collections import Counter

import pytest

from delivery import batches, by_hand
from delivery.models import Delivery
from delivery.wire import carriers
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.mark.parametrize(
    "answer",
    [
        [421, "4.7.0 Throttling: too many messages, slow down"],
        [454, "4.7.0 Rate limit exceeded"],
        [451, "4.7.1 Too many messages from your IP"],
    ],
)
def test_a_relay_throttling_requeues_the_batch_without_counting_attempts(
    smtp_server, settings, answer
):
    settings.MAILERS = {**settings.MAILERS, "fallback": settings.MAILERS["default"]}
    settings.FALLBACK_AFTER_FAILURES = 1
    carriers.reset()
    make_article()
    readers = [make_subscriber(f"reader{n}@example.com") for n in range(4)]
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(refuse_data_after=2, data_reply=answer)

    with pytest.raises(batches.ThrottledSend, match=str(answer[0])):
        by_hand.send_edition_in_process(edition.pk)

    rows = Counter(Delivery.objects.values_list("status", "attempts"))
    assert rows == {("sent", 1): 2, ("queued", 0): 2}
    # A relay that asks for patience works: it is not given up for the fallback.
    assert carriers.choose() == carriers.PRIMARY
    smtp_server.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert smtp_server.recipients() == sorted(reader.email for reader in readers)
    carriers.reset()


def test_a_plain_try_again_later_is_an_unavailable_server(smtp_server):
    make_article()
    make_subscriber("reader@example.com")
    edition = built_edition(MONDAY)
    smtp_server.inject_faults(refuse_data_after=0, data_reply=[451, "4.3.0 Try again later"])

    with pytest.raises(batches.TransientSendError) as raised:
        by_hand.send_edition_in_process(edition.pk)

    assert not isinstance(raised.value, batches.ThrottledSend)
    assert Delivery.objects.get().attempts == 1
