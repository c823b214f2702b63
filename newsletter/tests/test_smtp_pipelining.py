"""Pipelined sending behaves exactly like smtplib's sendmail, errors included."""

import smtplib

import pytest

from newsletter import smtp

MESSAGE = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Dots\r\n\r\n"
    b"First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast"
)


@pytest.fixture
def connection(smtp_server):
    client = smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10)
    yield client
    client.close()


@pytest.mark.parametrize("pipelining", [True, False])
def test_the_message_arrives_intact_either_way(smtp_server, connection, pipelining):
    assert smtp.supports_pipelining(connection)

    smtp.send(connection, "a@example.com", "b@example.com", MESSAGE, pipelining=pipelining)

    (mail,) = smtp_server.received()
    assert mail.mail_from == "a@example.com"
    assert mail.rcpt_tos == ["b@example.com"]
    # Dot-stuffing is undone by the server: the lines are as written.
    assert mail.data.endswith("First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n")


def test_a_server_without_pipelining_is_detected(smtp_server):
    smtp_server.inject_faults(no_pipelining=True)
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as client:
        assert not smtp.supports_pipelining(client)


def test_a_refused_recipient_raises_as_sendmail_does_and_the_connection_goes_on(
    smtp_server, connection
):
    smtp_server.inject_faults(refuse_recipients={"gone@example.com": [550, "5.1.1 No such user"]})
    smtp.supports_pipelining(connection)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp.send(connection, "a@example.com", "gone@example.com", MESSAGE, pipelining=True)
    assert refused.value.recipients == {"gone@example.com": (550, b"5.1.1 No such user")}

    smtp.send(connection, "a@example.com", "b@example.com", MESSAGE, pipelining=True)
    assert smtp_server.recipients() == ["b@example.com"]


def test_a_refused_message_raises_a_data_error_with_the_servers_answer(smtp_server, connection):
    smtp_server.inject_faults(refuse_data_after=0, data_reply=[451, "4.3.0 Try again later"])
    smtp.supports_pipelining(connection)

    with pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.send(connection, "a@example.com", "b@example.com", MESSAGE, pipelining=True)
    assert refused.value.smtp_code == 451

    smtp_server.clear_faults()
    smtp.send(connection, "a@example.com", "b@example.com", MESSAGE, pipelining=True)
    assert smtp_server.recipients() == ["b@example.com"]


def test_a_refused_sender_raises_sender_refused(smtp_server, connection):
    smtp_server.inject_faults(refuse_senders={"spoof@example.com": [553, "5.7.1 Not allowed"]})
    smtp.supports_pipelining(connection)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.send(connection, "spoof@example.com", "b@example.com", MESSAGE, pipelining=True)
    assert refused.value.smtp_code == 553
    smtp.send(connection, "a@example.com", "b@example.com", MESSAGE, pipelining=True)
    assert smtp_server.recipients() == ["b@example.com"]
