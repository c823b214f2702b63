"""Sending messages over an open SMTP connection, pipelined when the server allows.

smtplib sends MAIL FROM, RCPT TO and DATA one at a time, waiting for each
answer: four round trips per email with the message itself. With PIPELINING
(RFC 2920), which every mainstream server offers, the three envelope commands
go in one write and their answers are read together; and a message's
content may open the next group of commands, so `Pipeline` writes each
message together with the next one's envelope and reads all their answers
at once: one round trip per message, where smtplib's loop takes four. The
errors are smtplib's own, as SMTP.sendmail raises them, so callers cannot
tell the difference except by speed. Servers without PIPELINING get `send`,
sendmail's steps one at a time.
"""

import contextlib
import re
import smtplib
from collections import deque
from collections.abc import Hashable

from delivery.wire.outcomes import Outcome, Unconfirmed

CRLF = b"\r\n"
MAX_REPLY_LINE = 8192  # smtplib's limit on a reply line


class UnconfirmedSend(smtplib.SMTPServerDisconnected, Unconfirmed):
    """The connection was lost after the whole message went out, before the server's answer.

    The message was most likely delivered (RFC 1047): sending it again is
    how a reader gets two copies, or five.
    """


class NotSent(smtplib.SMTPServerDisconnected):
    """The connection was lost before this message's content went out: it was not delivered."""


def supports_pipelining(smtp: smtplib.SMTP) -> bool:
    smtp.ehlo_or_helo_if_needed()
    return smtp.has_extn("pipelining")


def supports_chunking(smtp: smtplib.SMTP) -> bool:
    """Whether the server takes BDAT (RFC 3030) pipelined: several whole messages a round trip."""
    return supports_pipelining(smtp) and smtp.has_extn("chunking")


def send(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """smtp.sendmail(sender, [recipient], message), one answer at a time (no PIPELINING).

    Raises UnconfirmedSend when the connection drops after the end of DATA
    and before the server answers it.
    """
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.mail(sender)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        _abandon(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.docmd("DATA")
    if code != 354:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    _send_data(smtp, message)


def data_block(message: bytes) -> bytes:
    """The message as DATA carries it: dot-stuffed (RFC 5321 4.5.2), ending in CRLF "." CRLF."""
    # Lines end in CRLF, so a line that starts with a dot follows a "\n":
    # bytes.replace finds them many times faster than a regex substitution,
    # and quoted-printable's soft breaks put one in most full digests.
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\n.", b"\n..")
    if not message.endswith(CRLF):
        message += CRLF
    return message + b"." + CRLF


def _send_data(smtp: smtplib.SMTP, message: bytes) -> None:
    """The message and its final dot, after the server's 354; then its answer."""
    smtp.send(data_block(message))
    try:
        code, reply = smtp.getreply()
    except smtplib.SMTPServerDisconnected as error:
        raise UnconfirmedSend(f"Connection lost before the server confirmed: {error}") from error
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    # As smtplib does (SMTP._rset): a 421 means the server is closing;
    # otherwise reset, and a server that hung up meanwhile is no error here.
    if code == 421:
        smtp.close()
    else:
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            smtp.rset()


# Addresses that smtplib.quoteaddr only wraps in <>: it parses every other
# one (a few microseconds, for each of the two addresses of every email).
BARE_ADDRESS = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+")


def quote_address(address: str) -> str:
    """smtplib.quoteaddr(address), without parsing the common plain address."""
    if BARE_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def envelope(sender: str, recipient: str) -> bytes:
    """MAIL FROM, RCPT TO and DATA for one message, as one group of commands."""
    return (
        b"MAIL FROM:" + quote_address(sender).encode("ascii") + CRLF
        + b"RCPT TO:" + quote_address(recipient).encode("ascii") + CRLF
        + b"DATA" + CRLF
    )  # fmt: skip


class Pipeline[K: Hashable]:
    """Messages over one SMTP connection, one round trip each (RFC 2920 pipelining).

    Each `send` writes, in one go, the content of the message before (which
    the server's 354 is waiting for) and this message's envelope, then reads
    the answers to both. So a message's outcome is known on the next `send`,
    or on `finish`: each call returns the outcomes it learnt, as (key, error)
    with error None for a message the server accepted, and otherwise what
    SMTP.sendmail would have raised: SMTPSenderRefused, SMTPRecipientsRefused,
    SMTPDataError; UnconfirmedSend when the connection dropped after a
    message's content went out and before its answer; NotSent for a message
    whose content never went because the connection was lost first.

    After a lost connection the pipeline is done with: the caller opens a new
    one. A caller that stops with a message in flight calls `abort`: the
    connection is closed, so the message is never completed (ending it, or
    sending QUIT, would deliver it, or feed QUIT to it as content).
    """

    # Messages written and not yet answered, at most: the one the server said 354 to.
    window = 1

    def __init__(self, smtp: smtplib.SMTP) -> None:
        if smtp.sock is None:
            raise smtplib.SMTPServerDisconnected("The SMTP connection is not open.")
        self.smtp = smtp
        self.sock = smtp.sock
        self._replies = bytearray()
        # The message the server has said 354 to: its key and its DATA block.
        self._in_flight: tuple[K, bytes] | None = None

    @property
    def in_flight(self) -> K | None:
        return self._in_flight[0] if self._in_flight else None

    def send(self, key: K, sender: str, recipient: str, message: bytes) -> list[Outcome[K]]:
        """Send `message` (its outcome comes later); return the outcomes learnt meanwhile."""
        previous, self._in_flight = self._in_flight, None
        commands = envelope(sender, recipient)
        try:
            self._write(previous[1] + commands if previous else commands)
        except smtplib.SMTPServerDisconnected as error:
            lost = [(previous[0], NotSent(str(error)))] if previous else []
            return [*lost, (key, NotSent(str(error)))]
        outcomes: list[Outcome[K]] = []
        if previous:
            try:
                outcomes.append((previous[0], self._data_outcome()))
            except smtplib.SMTPServerDisconnected as error:
                return [(previous[0], _unconfirmed(error)), (key, NotSent(str(error)))]
        try:
            mail, rcpt, data = self._reply(), self._reply(), self._reply()
        except smtplib.SMTPServerDisconnected as error:
            return [*outcomes, (key, NotSent(str(error)))]
        refusal = _envelope_refusal(sender, recipient, mail, rcpt, data)
        if refusal is None:
            self._in_flight = (key, data_block(message))
            return outcomes
        code, refused = refusal
        if data[0] == 354:
            # The server took DATA although the envelope failed: end it empty.
            self._write(b"." + CRLF)
            self._reply()
        _abandon(self.smtp, code)
        return [*outcomes, (key, refused)]

    def finish(self) -> list[Outcome[K]]:
        """Complete the message in flight, if any; return its outcome."""
        if self._in_flight is None:
            return []
        (key, block), self._in_flight = self._in_flight, None
        try:
            self._write(block)
        except smtplib.SMTPServerDisconnected as error:
            return [(key, NotSent(str(error)))]
        try:
            return [(key, self._data_outcome())]
        except smtplib.SMTPServerDisconnected as error:
            return [(key, _unconfirmed(error))]

    def abort(self) -> list[Outcome[K]]:
        """Drop the connection, and with it any message in flight (never delivered)."""
        self._in_flight = None
        self.smtp.close()
        return []

    def _data_outcome(self) -> smtplib.SMTPException | None:
        code, text = self._reply()
        if code == 250:
            return None
        if code == 421:
            self.smtp.close()  # the server is closing the connection
        return smtplib.SMTPDataError(code, text)

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as error:
            self.smtp.close()
            raise smtplib.SMTPServerDisconnected(
                f"Connection lost while sending: {error}"
            ) from error

    def _reply(self) -> tuple[int, bytes]:
        """The next reply, read from the socket as SMTP.getreply reads it."""
        lines: list[bytes] = []
        while True:
            end = self._replies.find(CRLF)
            if end < 0:
                if len(self._replies) > MAX_REPLY_LINE:
                    self.smtp.close()
                    raise smtplib.SMTPResponseException(500, "Line too long.")
                self._receive()
                continue
            line = bytes(self._replies[:end])
            del self._replies[: end + 2]
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    code = -1
                return code, b"\n".join(lines)

    def _receive(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except OSError as error:
            self.smtp.close()
            raise smtplib.SMTPServerDisconnected(
                f"Connection unexpectedly closed: {error}"
            ) from error
        if not chunk:
            self.smtp.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self._replies += chunk


def _unconfirmed(error: Exception) -> UnconfirmedSend:
    return UnconfirmedSend(f"Connection lost before the server confirmed: {error}")


def _envelope_refusal(
    sender: str,
    recipient: str,
    mail: tuple[int, bytes],
    rcpt: tuple[int, bytes],
    data: tuple[int, bytes],
) -> tuple[int, smtplib.SMTPException] | None:
    """The failing answer's code and what SMTP.sendmail raises for it, if any failed."""
    if mail[0] != 250:
        return mail[0], smtplib.SMTPSenderRefused(*mail, sender)
    if rcpt[0] not in (250, 251):
        return rcpt[0], smtplib.SMTPRecipientsRefused({recipient: rcpt})
    if data[0] != 354:
        return data[0], smtplib.SMTPDataError(*data)
    return None


# Messages a chunking connection writes before it waits for the oldest's
# answers: that many a round trip. 25 connections of 10 at 50 ms could carry
# 5,000 emails a second, past what a worker process builds; more would only
# leave more messages unconfirmed when a connection drops.
CHUNKING_WINDOW = 10


class ChunkingPipeline[K: Hashable](Pipeline[K]):
    """Whole messages over one SMTP connection, many a round trip (RFC 3030 CHUNKING).

    DATA waits a round trip for the server's 354 before the content may go:
    one message a round trip, however the commands are pipelined. `BDAT
    <size> LAST` carries the content with the command, so MAIL FROM, RCPT TO
    and BDAT of a message go in one write, and the next message's right
    after: `window` messages go out before the oldest one's answers are read.

    The outcomes are the Pipeline's: each `send` returns those learnt (as
    the oldest messages' answers are read), `finish` the rest. A refusal
    ends only its own transaction (BDAT LAST ends it, refused or not: no
    RSET is needed, and the messages written after it stand on their own).
    After a 421 the server closes: the messages written after the one it
    answered were not taken (NotSent). A lost connection leaves every
    message written and not yet answered unconfirmed (its content went out
    whole), up to `window` + 1 of them, and the one whose write failed NotSent.
    """

    def __init__(self, smtp: smtplib.SMTP, window: int = CHUNKING_WINDOW) -> None:
        super().__init__(smtp)
        self.window = window
        # Written whole, answers not read yet: key, sender and recipient.
        self.awaiting: deque[tuple[K, str, str]] = deque()

    @property
    def in_flight(self) -> K | None:
        return self.awaiting[0][0] if self.awaiting else None

    def send(self, key: K, sender: str, recipient: str, message: bytes) -> list[Outcome[K]]:
        """Write `message` whole (its outcome comes later); return the outcomes learnt meanwhile."""
        if self.smtp.sock is None:
            # A 421 closed the connection: nothing more goes over it.
            return [(key, NotSent("The server closed the connection."))]
        if not message.endswith(CRLF):
            message += CRLF
        commands = (
            b"MAIL FROM:" + quote_address(sender).encode("ascii") + CRLF
            + b"RCPT TO:" + quote_address(recipient).encode("ascii") + CRLF
            + b"BDAT " + str(len(message)).encode("ascii") + b" LAST" + CRLF
        )  # fmt: skip
        try:
            self._write(commands + message)
        except smtplib.SMTPServerDisconnected as error:
            return [*self._lost(error), (key, NotSent(str(error)))]
        self.awaiting.append((key, sender, recipient))
        outcomes: list[Outcome[K]] = []
        while len(self.awaiting) > self.window:
            outcomes += self._answer()
        return outcomes

    def finish(self) -> list[Outcome[K]]:
        """The outcomes of every message written and not yet answered."""
        outcomes: list[Outcome[K]] = []
        while self.awaiting:
            outcomes += self._answer()
        return outcomes

    def abort(self) -> list[Outcome[K]]:
        """Every message written went out whole (none to drop): learn their outcomes."""
        return self.finish()

    def _answer(self) -> list[Outcome[K]]:
        """The oldest message's outcome from its three answers; more if the server closes."""
        key, sender, recipient = self.awaiting.popleft()
        answers: list[tuple[int, bytes]] = []
        try:
            while len(answers) < 3 and 421 not in (code for code, _text in answers):
                answers.append(self._reply())
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as error:
            # Lost (or a reply line too long: closed) after the content went whole.
            return [(key, _unconfirmed(error)), *self._lost(error)]
        mail, rcpt, bdat = (answers + [(421, b"")] * 3)[:3]
        outcome: smtplib.SMTPException | None = None
        if mail[0] != 250:
            outcome = smtplib.SMTPSenderRefused(*mail, sender)
        elif rcpt[0] not in (250, 251):
            outcome = smtplib.SMTPRecipientsRefused({recipient: rcpt})
        elif bdat[0] != 250:
            outcome = smtplib.SMTPDataError(*bdat)
        if len(answers) == 3 and 421 not in (mail[0], rcpt[0], bdat[0]):
            return [(key, outcome)]
        # A 421: the server is closing, and took nothing written after it.
        self.smtp.close()
        later = [(later_key, NotSent("The server closed the connection (421)."))
                 for later_key, _s, _r in self.awaiting]  # fmt: skip
        self.awaiting.clear()
        return [(key, outcome), *later]

    def _lost(self, error: Exception) -> list[Outcome[K]]:
        """The connection is gone: the messages written whole and not answered are unconfirmed."""
        lost: list[Outcome[K]] = [(key, _unconfirmed(error)) for key, _s, _r in self.awaiting]
        self.awaiting.clear()
        self.smtp.close()
        return lost
