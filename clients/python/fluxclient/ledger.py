"""The delivery ledger of one session: which payloads were sent and not yet
echoed, which echoes wait for recv(), and the session's seq.

It is what makes the client's promise hold (fluxclient.client: every payload
echoed exactly once and in order, across reconnects): an echo must match the
oldest unechoed payload, a resume tells which of them the server never read
(they are sent again), and a refused resume hands back the ones that are
lost. No I/O and no asyncio here; the Client drives it."""

from __future__ import annotations

import collections
from typing import Any

from .errors import ProtocolViolation


class Ledger:
    def __init__(self, seq: int = 0):
        self.seq = seq  # echoes received in the session = the seq of the last one
        self.unechoed: collections.deque[bytes] = collections.deque()  # sent, echo not received
        self.foreign = 0  # replayed echoes of frames this client did not send (resume at connect)
        self.rx: collections.deque[Any] = collections.deque()  # echoes and reported errors, for recv()
        self.undelivered = 0  # frames between send() and recv()
        self.undelivered_bytes = 0

    def fits(self, size: int, window: int, window_bytes: int) -> bool:
        """Room for one more payload of `size` bytes in the window (a single
        frame always fits an empty window, however large)."""
        return self.undelivered < window and (
            self.undelivered == 0 or self.undelivered_bytes + size <= window_bytes)

    def sent(self, payload: bytes) -> None:
        self.unechoed.append(payload)
        self.undelivered += 1
        self.undelivered_bytes += len(payload)

    def echoed(self, payload: bytes) -> None:
        """An echo arrived: it must be the oldest unechoed payload (or a
        replayed one of a session resumed at connect). Raises
        ProtocolViolation otherwise."""
        if self.foreign:
            self.foreign -= 1
            self.undelivered += 1
            self.undelivered_bytes += len(payload)
        elif not self.unechoed:
            raise ProtocolViolation(f"echo of a frame never sent ({len(payload)} bytes)")
        elif self.unechoed[0] != payload:
            raise ProtocolViolation(f"echo {self.seq + 1} differs from the frame sent "
                                    f"({len(payload)} vs {len(self.unechoed[0])} bytes)")
        else:
            self.unechoed.popleft()
        self.seq += 1
        self.rx.append(payload)

    def take(self) -> Any:
        """The next item for recv(): an echo (counted as delivered) or an error."""
        item = self.rx.popleft()
        if not isinstance(item, BaseException):
            self.undelivered -= 1
            self.undelivered_bytes -= len(item)
        return item

    def resumed(self, replayed: int, first_connection: bool) -> list[bytes]:
        """The server replays `replayed` echoes after our resume (checked by
        the caller against the session): returns the payloads it never read,
        to be sent again. On the first connection (a resume at connect) the
        replayed echoes are of frames someone else sent."""
        if first_connection:
            self.foreign = replayed
            return list(self.unechoed)
        return list(self.unechoed)[replayed:]

    def restart(self) -> list[bytes]:
        """A new session replaces a lost one: returns the payloads whose echo
        never came (they are not sent again) and starts at seq 0."""
        lost = list(self.unechoed)
        self.unechoed.clear()
        self.undelivered -= len(lost)
        self.undelivered_bytes -= sum(map(len, lost))
        self.seq, self.foreign = 0, 0
        return lost
