"""The PostgreSQL client tools against the server: the combinations that cannot work are refused.

pg_dump refuses a server newer than itself; a newer pg_dump's archive only
restores into a server of its version or later (pg_dump 17 writes `SET
transaction_timeout`, which 16 does not know); pg_restore cannot read a newer
pg_dump's archive. Each is refused with the version to install, before
anything runs.
"""

import pytest

from operations import databases
from operations.archives import BackupError


@pytest.mark.parametrize(
    ("client", "server", "refused", "note"),
    [
        ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", 15, None, None),
        (
            "pg_dump (PostgreSQL) 15.20",
            16,
            "cannot dump a PostgreSQL 16 server .* postgresql-client-16",
            None,
        ),
        ("pg_dump (PostgreSQL) 17.2", 16, None, "restores only into PostgreSQL 17 or later"),
    ],
)
def test_pg_dump_older_than_the_server_is_refused_and_a_newer_one_noted(
    client, server, refused, note
):
    if refused:
        with pytest.raises(BackupError, match=refused):
            databases.check_dump_client(client, server)
        return
    answer = databases.check_dump_client(client, server)
    if note is None:
        assert answer is None
    else:
        assert answer is not None and note in answer


@pytest.mark.parametrize(
    ("dumped_by", "restorer", "server", "refused"),
    [
        ("pg_dump (PostgreSQL) 15.20", "pg_restore (PostgreSQL) 15.20", 15, None),
        ("pg_dump (PostgreSQL) 15.20", "pg_restore (PostgreSQL) 16.4", 16, None),
        ("pg_dump (PostgreSQL) 16.4", "pg_restore (PostgreSQL) 15.20", 16, "cannot read it"),
        ("pg_dump (PostgreSQL) 17.2", "pg_restore (PostgreSQL) 17.2", 16, "into PostgreSQL 17"),
    ],
)
def test_pg_restore_refuses_an_archive_it_or_the_server_cannot_take(
    dumped_by, restorer, server, refused
):
    if refused is None:
        databases.check_restore_client(dumped_by, restorer, server)
        return
    with pytest.raises(BackupError, match=refused):
        databases.check_restore_client(dumped_by, restorer, server)
