"""A TCP proxy that puts a round trip of latency between the sender and a server.

    python -m bench.latency_proxy TARGET_HOST:TARGET_PORT --rtt-ms 50

Listens on a free port of 127.0.0.1, prints "PORT <n>" once it accepts
connections, and forwards every connection to the target, holding each
chunk of bytes half the round trip in each direction: a relay in another
data centre, on this machine (the kernel's netem is not available here).
Bytes are delayed, not throttled: a pipelining sender keeps many in flight,
as over a real long wire. Runs until killed.
"""

import argparse
import asyncio
import time


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk `delay` seconds after it arrived, in order."""
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    delivering = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            chunks.put_nowait((time.monotonic() + delay, chunk))
    except ConnectionError:
        pass  # the other side went away: what was read is still delivered
    finally:
        chunks.put_nowait((time.monotonic() + delay, b""))
    try:
        await delivering
    except ConnectionError:
        return


async def serve(target_host: str, target_port: int, rtt: float) -> None:
    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            forward(client_reader, server_writer, rtt / 2),
            forward(server_reader, client_writer, rtt / 2),
        )
        for writer in (client_writer, server_writer):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1000)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT of the server behind the proxy")
    parser.add_argument("--rtt-ms", type=float, default=50, help="the round trip it adds")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    asyncio.run(serve(host, int(port), args.rtt_ms / 1000))


if __name__ == "__main__":
    main()
