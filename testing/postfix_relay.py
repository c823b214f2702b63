"""A real Postfix relay for tests and the bench: Debian's postfix, an instance of our own.

Postfix's smtpd offers what smtp-sink and aiosmtpd do not: CHUNKING (RFC
3030, BDAT), as relays from Postfix 3.4 on, Exchange and Gmail do. The
instance has its own configuration, queue and log in a temporary directory,
listens on a free port of 127.0.0.1, and hands every message it takes on:
to a test's SMTP server (`forward_to`, so the test reads what arrived), or
to Postfix's discard agent. Recipients
listed in `REFUSED` are refused as a relay would refuse them.

Postfix's master runs as root (it starts each daemon as the postfix user):
`PostfixRelay` refuses to start otherwise. Postfix is installed from Debian
when missing, as `make bench` installs smtp-sink.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from testing.daemons import free_port, stop, wait_until_listening

MASTER = "/usr/lib/postfix/sbin/master"
QUEUE_DIRECTORIES = (
    "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
    "incoming", "maildrop", "private", "public", "saved", "trace",
)  # fmt: skip
# The relay's own answers to these recipients (access(5) actions).
REFUSED = {
    "refused@example.com": "REJECT",  # 554 5.7.1
    "later@example.com": "DEFER_IF_PERMIT",  # 450 4.7.1
    "closing@example.com": "421 4.7.0 Closing: try again later",
}

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access inline:{{ {refused} }}
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 100
{transport}
"""
FORWARD = """\
default_transport = smtp
relay_transport = smtp
relayhost = [127.0.0.1]:{port}
smtp_tls_security_level = none
"""
DISCARD = """\
default_transport = discard
relay_transport = discard
"""
# No chroot: the instance lives in a temporary directory, not /var/spool.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def ensure_postfix() -> None:
    if Path(MASTER).exists():
        return
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # No questions: Postfix installed with no system-wide configuration.
    subprocess.run(
        ["debconf-set-selections"],  # noqa: S607 - Debian's tools, from PATH
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=True,
    )
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)  # noqa: S607
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "postfix"],  # noqa: S607
        check=True,
        env=environment,
    )


class PostfixRelay:
    """A Postfix instance offering PIPELINING and CHUNKING on a free port of 127.0.0.1."""

    def __init__(self, forward_to: int | None = None) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("Postfix's master must run as root.")
        ensure_postfix()
        # Not under pytest's tmp_path: its directories are private to this
        # user (0700), and Postfix's daemons run as the postfix user.
        self.root = root = Path(tempfile.mkdtemp(prefix="briefing-postfix-"))
        root.chmod(0o755)
        (root / "conf").mkdir()
        queue = root / "queue"
        for name in (*QUEUE_DIRECTORIES, "pid"):
            (queue / name).mkdir(parents=True)
        (root / "data").mkdir()
        for path in (*(queue / name for name in QUEUE_DIRECTORIES), root / "data"):
            shutil.chown(path, "postfix", "postfix")
        (queue / "private").chmod(0o700)
        self.port = free_port()
        transport = FORWARD.format(port=forward_to) if forward_to else DISCARD
        # Each entry in braces: an action's text has spaces.
        refused = ", ".join(f"{{ {address} = {action} }}" for address, action in REFUSED.items())
        (root / "conf" / "main.cf").write_text(
            MAIN_CF.format(root=root, refused=refused, transport=transport)
        )
        (root / "conf" / "master.cf").write_text(MASTER_CF.format(port=self.port))
        self.process = subprocess.Popen(  # noqa: S603 - our own postfix and config
            [MASTER, "-d", "-c", str(root / "conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until_listening(self.process, [self.port], "Postfix", self.log)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop(self.process)  # master stops its daemons
        shutil.rmtree(self.root, ignore_errors=True)
