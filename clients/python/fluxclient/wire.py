"""One connection's frames and handshake for the asyncio client: reading a
frame from a StreamReader, FLUX_HELLO and its FLUX_READY answer, and an
abortive close (RST). Stateless; the session's state is the Client's
(fluxclient.client). Framing itself is fluxclient.codec."""

from __future__ import annotations

import asyncio
import socket
import struct

from . import codec
from .errors import ProtocolViolation, server_error


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = codec.HEADER.unpack(await reader.readexactly(codec.HEADER.size))
    return await reader.readexactly(length) if length else b""


def parse_ready(args: str) -> tuple[str, int]:
    """FLUX_READY's arguments: (session id, seq)."""
    parts = args.split(" ")
    if len(parts) != 2 or len(parts[0]) != 32 or not parts[1].isdigit():
        raise ProtocolViolation(f"malformed FLUX_READY {args!r}")
    return parts[0], int(parts[1])


async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """FLUX_HELLO 1; returns the new session's id (raises the server's refusal)."""
    writer.write(codec.encode(b"FLUX_HELLO 1"))
    command, rest = codec.split_control(await read_frame(reader))
    if command == "FLUX_READY":
        sid, seq = parse_ready(rest)
        if seq != 0:
            raise ProtocolViolation(f"FLUX_HELLO answered FLUX_READY {rest}")
        return sid
    if command == "FLUX_ERROR":
        raise server_error(rest)
    raise ProtocolViolation(f"FLUX_HELLO answered {command!r}")


def abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Closes with an RST, as a network failure would (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
