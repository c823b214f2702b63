"""A real IMAP and POP3 server for tests: Dovecot (Debian's dovecot-imapd, dovecot-pop3d).

Started once per test module (emptied between tests) over a Maildir of its
own, on free ports of 127.0.0.1, with one user. Messages are put in with IMAP APPEND, as a mail
delivery agent would file them; the code under test reads them over IMAP or
POP3. Dovecot is installed from Debian when missing (as `make bench` installs
smtp-sink), and the helper fails loudly when it cannot be.
"""

import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from testing.daemons import free_port, stop, wait_until_listening

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "mailbox-secret"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


def ensure_dovecot() -> None:
    if Path(DOVECOT).exists() and Path("/usr/lib/dovecot/pop3").exists():
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "dovecot-imapd", "dovecot-pop3d"],  # noqa: S607
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


class MailServer:
    """A Dovecot process serving one mailbox over IMAP and POP3."""

    def __init__(self) -> None:
        ensure_dovecot()
        # Not under pytest's tmp_path: its directories are private to this
        # user (0700), and Dovecot's processes run as its own users.
        self.root = root = Path(tempfile.mkdtemp(prefix="briefing-dovecot-"))
        root.chmod(0o755)
        for sub in ("run", "state", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # Dovecot will not serve mail as root: the mailbox belongs to its own user.
        owner = pwd.getpwnam("dovecot") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        shutil.chown(root / "home", owner.pw_uid, owner.pw_gid)
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.imap_port, self.pop3_port = free_port(), free_port()
        (root / "dovecot.conf").write_text(
            CONFIG.format(
                root=root,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
                imap_port=self.imap_port,
                pop3_port=self.pop3_port,
            )
        )
        self.process = subprocess.Popen(  # noqa: S603 - our own dovecot and config
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until_listening(self.process, [self.imap_port, self.pop3_port], "Dovecot", self.log)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text() if path.exists() else ""

    def url(self, scheme: str = "imap") -> str:
        port = self.imap_port if scheme == "imap" else self.pop3_port
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}/"

    def _imap(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def deliver(self, raw: bytes) -> None:
        """File a message in the inbox, as the mail system would on arrival."""
        imap = self._imap()
        try:
            message = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            status, data = imap.append("INBOX", None, None, message)
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
        finally:
            imap.logout()

    def inbox(self) -> list[tuple[set[str], bytes]]:
        """Every message still in the inbox, with its flags."""
        imap = self._imap()
        try:
            imap.select("INBOX")
            _, data = imap.uid("SEARCH", "ALL")
            messages = []
            for uid in data[0].split():
                _, fetched = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                head, body = fetched[0]
                flags = set(imaplib.ParseFlags(head))
                messages.append(({flag.decode() for flag in flags}, body))
            return messages
        finally:
            imap.logout()

    def empty(self) -> None:
        """Delete every message, so one server can serve a module's tests one after another."""
        imap = self._imap()
        try:
            imap.select("INBOX")
            _, data = imap.uid("SEARCH", "ALL")
            if data[0]:
                imap.uid("STORE", b",".join(data[0].split()).decode(), "+FLAGS", "(\\Deleted)")
                imap.expunge()
        finally:
            imap.logout()

    def stop(self) -> None:
        stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)
