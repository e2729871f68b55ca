#!/usr/bin/env python
"""A TCP proxy with an off switch: makes a server unreachable to its clients while the server (and its
data) stays up. crash_rounds.py puts one between the store's clients and the MongoDB test server and one
before the S3 test server, whose data live in their memory and would be lost by a restart.

    python scripts/tcp_proxy.py --target HOST:PORT [--port 0] [--exit-with-parent]

prints exactly one line, `READY <port> <control port>`, once both listen on 127.0.0.1, and stops on
SIGTERM or SIGINT (and by itself when its parent dies, with --exit-with-parent). Every connection to
<port> is relayed to the target. The control port takes one command per line and answers one line:

    down     every relayed connection is reset (both sides), and new ones are reset on accept, as a
             server that went away; answers `ok down <connections reset>` once they all are
    up       relay again; answers `ok up`
    stats    `{"up": bool, "relayed": N, "reset": N, "refused": N}` (connections relayed since start,
             reset by `down`, refused while down)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys

BUFFER = 1 << 16
NO_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection at once with a TCP reset (what a dead server's host answers)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_LINGER)
        except OSError:
            pass
    writer.transport.abort()


class Proxy:
    """The relay and its switch; everything runs on one event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.up = True
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.handlers: set[asyncio.Task[None]] = set()  # the relaying connections' tasks
        self.counts = {"relayed": 0, "reset": 0, "refused": 0}

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.counts["refused"] += 1
            reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            reset(writer)
            return
        if not self.up:  # went down while connecting
            self.counts["refused"] += 1
            reset(writer)
            reset(up_writer)
            return
        pair, me = (writer, up_writer), asyncio.current_task()
        assert me is not None
        self.pairs.add(pair)
        self.handlers.add(me)
        self.counts["relayed"] += 1
        pumps = [asyncio.create_task(self.pump(reader, up_writer)), asyncio.create_task(self.pump(up_reader, writer))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.handlers.discard(me)
            for t in pumps:
                t.cancel()
            if pair in self.pairs:  # not reset by `down`: one side closed, so close the other
                self.pairs.discard(pair)
                for w in pair:
                    w.close()

    @staticmethod
    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(BUFFER):
                dst.write(data)
                await dst.drain()
        except OSError:
            pass

    def down(self) -> int:
        self.up = False
        pairs, self.pairs = self.pairs, set()
        for pair in pairs:
            for w in pair:
                reset(w)
        self.counts["reset"] += len(pairs)
        return len(pairs)

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command = line.decode(errors="replace").strip()
                if command == "down":
                    answer = f"ok down {self.down()}"
                elif command == "up":
                    self.up = True
                    answer = "ok up"
                elif command == "stats":
                    answer = json.dumps({"up": self.up, **self.counts})
                else:
                    answer = f"error: unknown command {command!r}"
                writer.write(answer.encode() + b"\n")
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.target.rpartition(":")
    proxy = Proxy(host.strip("[]"), int(port))
    relay = await asyncio.start_server(proxy.client, "127.0.0.1", args.port)
    control = await asyncio.start_server(proxy.control, "127.0.0.1", 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ports = [s.sockets[0].getsockname()[1] for s in (relay, control)]
    print(f"READY {ports[0]} {ports[1]}", flush=True)
    sys.stdout = sys.stderr  # nothing else goes to the pipe the starter may have closed
    parent = os.getppid()
    while not stop.is_set() and not (args.exit_with_parent and os.getppid() != parent):
        await asyncio.sleep(0.2)
    relay.close()
    control.close()
    proxy.down()
    if proxy.handlers:  # they end as their sockets were reset: let them, rather than cancel them
        await asyncio.wait(proxy.handlers, timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to relay to")
    parser.add_argument("--port", type=int, default=0, help="port to listen on, 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies")
    asyncio.run(serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
