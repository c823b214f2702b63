"""Sending one message over an open SMTP connection, pipelined when the server allows.

smtplib sends MAIL FROM, RCPT TO and DATA one at a time, waiting for each
answer: four round trips per email with the message itself. With PIPELINING
(RFC 2920), which every mainstream server offers, the three envelope commands
go in one write and their answers are read together: two round trips. The
errors raised are smtplib's own, as SMTP.sendmail raises them, so callers
cannot tell the difference except by speed.
"""

import contextlib
import re
import smtplib

CRLF = b"\r\n"
LEADING_DOT = re.compile(rb"(?m)^\.")


class UnconfirmedSend(smtplib.SMTPServerDisconnected):
    """The connection was lost after the whole message went out, before the server's answer.

    The message was most likely delivered (RFC 1047): sending it again is
    how a reader gets two copies, or five.
    """


def supports_pipelining(smtp: smtplib.SMTP) -> bool:
    smtp.ehlo_or_helo_if_needed()
    return smtp.has_extn("pipelining")


def send(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes, *,
         pipelining: bool) -> None:  # fmt: skip
    """smtp.sendmail(sender, [recipient], message), in two round trips if `pipelining`.

    Raises UnconfirmedSend when the connection drops after the end of DATA
    and before the server answers it.
    """
    if not pipelining:
        _send_unpipelined(smtp, sender, recipient, message)
        return
    smtp.send(
        b"MAIL FROM:" + smtplib.quoteaddr(sender).encode("ascii") + CRLF
        + b"RCPT TO:" + smtplib.quoteaddr(recipient).encode("ascii") + CRLF
        + b"DATA" + CRLF
    )  # fmt: skip
    mail_reply = smtp.getreply()
    rcpt_reply = smtp.getreply()
    data_reply = smtp.getreply()

    if data_reply[0] == 354 and (mail_reply[0] != 250 or rcpt_reply[0] not in (250, 251)):
        # The server took DATA although the envelope failed: end it empty.
        smtp.send(b"." + CRLF)
        smtp.getreply()
    if mail_reply[0] != 250:
        _abandon(smtp, mail_reply[0])
        raise smtplib.SMTPSenderRefused(*mail_reply, sender)
    if rcpt_reply[0] not in (250, 251):
        _abandon(smtp, rcpt_reply[0])
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt_reply})
    if data_reply[0] != 354:
        _abandon(smtp, data_reply[0])
        raise smtplib.SMTPDataError(*data_reply)

    _send_data(smtp, message)


def _send_unpipelined(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """SMTP.sendmail's steps, one answer at a time, for a server without PIPELINING."""
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


def _send_data(smtp: smtplib.SMTP, message: bytes) -> None:
    """The message and its final dot, after the server's 354; then its answer."""
    body = LEADING_DOT.sub(b"..", message)
    if not body.endswith(CRLF):
        body += CRLF
    smtp.send(body + b"." + CRLF)
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
