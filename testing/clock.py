"""The instants the tests run at.

Every test runs at a fixed instant (the autouse `clock` fixture in
conftest.py): MONDAY_BEFORE_SEND unless it names another with
`@pytest.mark.clock(...)`. Nothing in the suite depends on the day it runs.
"""

import datetime

# A Monday with an ordinary morning: New York (DIGEST_TIMEZONE) on standard
# time, the 06:00 send at 11:00 UTC.
MONDAY = datetime.date(2026, 11, 30)
# 04:00 in New York: before that Monday's send.
MONDAY_BEFORE_SEND = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)
