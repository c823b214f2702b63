"""Pipelined sending behaves exactly like smtplib's sendmail, errors included.

`Pipeline` keeps one message in flight: each message's outcome comes back
with the next send, or from finish(). These tests talk to a real SMTP
server process (aiosmtpd, testing/smtp_sink.py) and read what it stored.
"""

import smtplib
import socket

import pytest

from delivery.wire import smtp

MESSAGE = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Dots\r\n\r\n"
    b"First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast"
)


@pytest.fixture
def connection(smtp_server):
    client = smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10)
    assert smtp.supports_pipelining(client)
    yield client
    client.close()


@pytest.fixture
def pipeline(connection):
    return smtp.Pipeline[str](connection)


def errors(outcomes):
    return {key: type(error).__name__ if error else None for key, error in outcomes}


def test_the_message_arrives_intact_pipelined(smtp_server, pipeline):
    assert pipeline.send("b", "a@example.com", "b@example.com", MESSAGE) == []
    assert pipeline.in_flight == "b"
    assert pipeline.finish() == [("b", None)]

    (mail,) = smtp_server.received()
    assert mail.mail_from == "a@example.com"
    assert mail.rcpt_tos == ["b@example.com"]
    # Dot-stuffing is undone by the server: the lines are as written.
    assert mail.data.endswith("First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n")


def test_the_message_arrives_intact_without_pipelining(smtp_server, connection):
    smtp.send(connection, "a@example.com", "b@example.com", MESSAGE)

    (mail,) = smtp_server.received()
    assert mail.data.endswith("First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n")


def test_each_outcome_comes_with_the_next_send_and_the_session_goes_on(smtp_server, pipeline):
    recipients = [f"reader{n}@example.com" for n in range(5)]
    outcomes = []
    for recipient in recipients:
        outcomes += pipeline.send(recipient, "a@example.com", recipient, MESSAGE)
    # Four known on the way, the last one on finish.
    assert [key for key, _ in outcomes] == recipients[:4]
    outcomes += pipeline.finish()

    assert outcomes == [(recipient, None) for recipient in recipients]
    assert smtp_server.recipients() == recipients
    # The connection is in a clean state: smtplib can use it after the pipeline.
    pipeline.smtp.sendmail("a@example.com", ["after@example.com"], MESSAGE)
    assert sorted(smtp_server.recipients()) == sorted([*recipients, "after@example.com"])


def test_a_dot_stuffed_block_ends_in_one_dot_line():
    assert smtp.data_block(b"a\r\n.b") == b"a\r\n..b\r\n.\r\n"
    assert smtp.data_block(b".a\r\n") == b"..a\r\n.\r\n"
    assert smtp.data_block(b"plain\r\n") == b"plain\r\n.\r\n"


def test_a_server_without_pipelining_is_detected(smtp_server):
    smtp_server.inject_faults(no_pipelining=True)
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as client:
        assert not smtp.supports_pipelining(client)


def test_a_refused_recipient_is_reported_as_sendmail_raises_it_and_the_rest_go(
    smtp_server, pipeline
):
    smtp_server.inject_faults(refuse_recipients={"gone@example.com": [550, "5.1.1 No such user"]})

    outcomes = pipeline.send("one", "a@example.com", "one@example.com", MESSAGE)
    outcomes += pipeline.send("gone", "a@example.com", "gone@example.com", MESSAGE)
    outcomes += pipeline.send("two", "a@example.com", "two@example.com", MESSAGE)
    outcomes += pipeline.finish()

    assert errors(outcomes) == {"one": None, "gone": "SMTPRecipientsRefused", "two": None}
    refused = dict(outcomes)["gone"]
    assert isinstance(refused, smtplib.SMTPRecipientsRefused)
    assert refused.recipients == {"gone@example.com": (550, b"5.1.1 No such user")}
    assert smtp_server.recipients() == ["one@example.com", "two@example.com"]


def test_without_pipelining_a_refused_recipient_raises_and_the_connection_goes_on(
    smtp_server, connection
):
    smtp_server.inject_faults(refuse_recipients={"gone@example.com": [550, "5.1.1 No such user"]})

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp.send(connection, "a@example.com", "gone@example.com", MESSAGE)
    assert refused.value.recipients == {"gone@example.com": (550, b"5.1.1 No such user")}

    smtp.send(connection, "a@example.com", "b@example.com", MESSAGE)
    assert smtp_server.recipients() == ["b@example.com"]


def test_a_refused_message_is_a_data_error_with_the_servers_answer(smtp_server, pipeline):
    smtp_server.inject_faults(refuse_data_after=1, data_reply=[451, "4.3.0 Try again later"])

    outcomes = pipeline.send("first", "a@example.com", "first@example.com", MESSAGE)
    outcomes += pipeline.send("second", "a@example.com", "second@example.com", MESSAGE)
    outcomes += pipeline.finish()

    assert errors(outcomes) == {"first": None, "second": "SMTPDataError"}
    refused = dict(outcomes)["second"]
    assert isinstance(refused, smtplib.SMTPDataError)
    assert refused.smtp_code == 451
    smtp_server.clear_faults()
    assert pipeline.send("third", "a@example.com", "third@example.com", MESSAGE) == []
    assert pipeline.finish() == [("third", None)]
    assert smtp_server.recipients() == ["first@example.com", "third@example.com"]


def test_a_refused_sender_is_sender_refused(smtp_server, pipeline):
    smtp_server.inject_faults(refuse_senders={"spoof@example.com": [553, "5.7.1 Not allowed"]})

    outcomes = pipeline.send("spoofed", "spoof@example.com", "b@example.com", MESSAGE)
    assert errors(outcomes) == {"spoofed": "SMTPSenderRefused"}
    assert isinstance(outcomes[0][1], smtplib.SMTPSenderRefused)
    assert outcomes[0][1].smtp_code == 553
    assert pipeline.in_flight is None

    pipeline.send("fine", "a@example.com", "b@example.com", MESSAGE)
    assert pipeline.finish() == [("fine", None)]
    assert smtp_server.recipients() == ["b@example.com"]


def test_a_connection_dropped_before_the_answer_is_unconfirmed_and_the_next_not_sent(
    smtp_server, pipeline
):
    smtp_server.inject_faults(drop_after_data_for=["dropped@example.com"])

    outcomes = pipeline.send("dropped", "a@example.com", "dropped@example.com", MESSAGE)
    outcomes += pipeline.send("next", "a@example.com", "next@example.com", MESSAGE)

    assert errors(outcomes) == {"dropped": "UnconfirmedSend", "next": "NotSent"}
    # The server had the first; the second never went.
    assert smtp_server.recipients() == ["dropped@example.com"]


def test_a_lost_connection_means_the_message_in_flight_was_not_sent(smtp_server, pipeline):
    pipeline.send("pending", "a@example.com", "pending@example.com", MESSAGE)
    assert pipeline.in_flight == "pending"
    pipeline.sock.shutdown(socket.SHUT_RDWR)  # gone before the content went

    outcomes = pipeline.finish()

    assert errors(outcomes) == {"pending": "NotSent"}
    assert smtp_server.recipients() == []


def test_an_aborted_pipeline_never_delivers_the_message_in_flight(smtp_server, pipeline):
    pipeline.send("kept", "a@example.com", "kept@example.com", MESSAGE)
    pipeline.send("dropped", "a@example.com", "dropped@example.com", MESSAGE)

    pipeline.abort()

    assert pipeline.in_flight is None
    assert smtp_server.recipients() == ["kept@example.com"]


@pytest.mark.parametrize(
    "address",
    [
        "reader0000001@bench.invalid",
        "first.last+tag@example.co.uk",
        "d-123-abc@bounces.example.com",
        "Name <a@example.com>",
        '"quoted local"@example.com',
        "<a@example.com>",
        "<>",
        "a@b",
    ],
)
def test_addresses_are_quoted_as_smtplib_quotes_them(address):
    assert smtp.quote_address(address) == smtplib.quoteaddr(address)
