"""Flux framing and control messages (docs/protocol.md sections 1, 2 and 4).

A frame is a 4-byte big-endian payload length, then the payload:

    +--------+--------+--------+--------+---------------------------+
    |      length (u32, network order)  |  payload (length bytes)   |
    +--------+--------+--------+--------+---------------------------+

Payloads starting with ``FLUX_`` are control messages, all others data.
This module has no I/O of its own except the two blocking helpers at the end
(``send_frame`` / ``recv_frame`` on a plain socket), for scripts and tests
that speak the protocol frame by frame; the asyncio client is fluxclient.Client.
"""

from __future__ import annotations

import socket
import struct

HEADER = struct.Struct(">I")
CONTROL_PREFIX = b"FLUX_"
MAX_LENGTH = 0xFFFFFFFF


def encode(payload: bytes) -> bytes:
    """One frame: header + payload."""
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    return HEADER.pack(len(payload)) + payload


def is_control(payload: bytes) -> bool:
    return payload.startswith(CONTROL_PREFIX)


def split_control(payload: bytes) -> tuple[str, str]:
    """(command, rest) of a control payload: b"FLUX_PING a b" -> ("FLUX_PING", "a b")."""
    text = payload.decode("ascii", errors="replace")
    command, _, rest = text.partition(" ")
    return command, rest


class FrameDecoder:
    """Reassembles frames from a byte stream cut anywhere (section 1)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Adds bytes; returns the payloads of the frames they completed."""
        self._buf += data
        frames = []
        pos = 0
        while len(self._buf) - pos >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buf, pos)
            end = pos + HEADER.size + length
            if end > len(self._buf):
                break
            frames.append(bytes(self._buf[pos + HEADER.size:end]))
            pos = end
        del self._buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._buf)


# ---- blocking helpers (plain sockets) --------------------------------------

def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes; EOFError if the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("server closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes:
    """The next frame's payload from a blocking socket (its timeout applies)."""
    (length,) = HEADER.unpack(recv_exact(sock, HEADER.size))
    return recv_exact(sock, length) if length else b""


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(encode(payload))
