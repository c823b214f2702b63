"""An SMTP sink that offers CHUNKING (RFC 3030): smtp-sink's part, for BDAT.

    python -m bench.chunking_sink

Listens on a free port of 127.0.0.1, prints "PORT <n>" once it accepts
connections, offers PIPELINING and CHUNKING, accepts every message (BDAT
or DATA) and discards it, and counts the messages in its log line at exit.
Runs until killed.

Postfix's smtp-sink does not offer CHUNKING, and Postfix's smtpd, which
does (testing.postfix_relay; the delivery tests send through it), takes
about as much CPU per message as the sender: on this 2-core machine it
caps a run at about 860 emails/s even on loopback, so a bench through it
would measure Postfix on the bench's own cores, not the send. A relay in
another data centre has cores of its own; this sink, like smtp-sink,
stands in for one that keeps up.
"""

import asyncio
import signal
import socket
import sys

GREETING = b"220 sink ESMTP\r\n"
EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n"


class Counts:
    messages = 0


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(GREETING)
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"BDAT":
                await reader.readexactly(int(line.split()[1]))
                Counts.messages += 1
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb in (b"EHLO", b"HELO"):
                writer.write(EHLO)
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                Counts.messages += 1
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:
                writer.write(b"502 5.5.2 Command not recognized\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the sender went away: its messages so far were counted
    finally:
        writer.close()


async def serve() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1000)
    server = await asyncio.start_server(session, sock=listener, limit=1 << 20)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    print(f"messages {Counts.messages}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(serve())
