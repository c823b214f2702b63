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


def supports_pipelining(smtp: smtplib.SMTP) -> bool:
    smtp.ehlo_or_helo_if_needed()
    return smtp.has_extn("pipelining")


def send(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes, *,
         pipelining: bool) -> None:  # fmt: skip
    """smtp.sendmail(sender, [recipient], message), in two round trips if `pipelining`."""
    if not pipelining:
        smtp.sendmail(sender, [recipient], message)
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

    body = LEADING_DOT.sub(b"..", message)
    if not body.endswith(CRLF):
        body += CRLF
    smtp.send(body + b"." + CRLF)
    code, reply = smtp.getreply()
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
