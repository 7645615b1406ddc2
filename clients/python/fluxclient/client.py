"""The asyncio Flux client: handshake, heartbeats, automatic resume.

    client = await fluxclient.connect("127.0.0.1", 9090)
    await client.send(b"hello")
    assert await client.recv() == b"hello"
    await client.close()

Delivery. Every payload given to send() is echoed by recv() exactly once and
in order, across dropped connections: the client keeps each payload until its
echo arrives. After a drop it reconnects (exponential back-off with jitter)
and sends FLUX_RESUME <session-id> <seq>, seq being the number of echoes it
received in the session. The server answers FLUX_READY <session-id> <s> and
replays echoes seq+1 .. s; the frames after s never reached the server and
are sent again, before any new frame (the same rule as fluxbench --churn,
bench/fluxbench/churn.h).

Flow control. At most `window` frames (and `window_bytes` bytes) are between
send() and recv(); send() waits for room. The defaults stay under the
gateway's default replay buffer (256 frames, 1 MiB), so a resume finds every
echo it needs and cannot hit replay-gap.

A refused resume (FLUX_INVALID session-unknown, bad-seq or replay-gap: the
server restarted, the session expired, ...) starts a new session with
FLUX_HELLO and recv() raises SessionLost once, in stream order, listing the
payloads whose echo never came (not re-sent). The client then goes on with
the new session.

Terminal conditions (recv(), send() and ping() raise them from then on;
recv() first returns the echoes already received): SessionTakenOver
(another connection resumed the session), FrameTooLarge, ProtocolViolation,
ConnectionLost (no reconnect within reconnect_timeout, or resume=False and the
connection ended; a FLUX_ERROR that ended it, e.g. ServerShutdown, is raised
as itself when resume=False), ClientClosed after close(). Each carries
`unacknowledged`: the payloads sent whose echo never came.

Not thread-safe: use a Client from the event loop that created it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Callable

from . import codec, wire
from .errors import (NETWORK_ERRORS, RESUMABLE_ERRORS, ClientClosed, ConnectionLost, FluxError,
                     InvalidSession, ProtocolViolation, ServerError, SessionLost, invalid_session,
                     server_error)
from .ledger import Ledger
from .options import Options

log = logging.getLogger("fluxclient")

_READY, _RECONNECTING, _CLOSING, _CLOSED, _NEW = "ready", "reconnecting", "closing", "closed", "new"


class Client:
    """One Flux session over successive TCP connections. Build it with
    fluxclient.connect(); all times are in seconds."""

    def __init__(self, host: str, port: int, **options):
        """options: see fluxclient.options.Options (a TypeError names an
        unknown one, a ValueError a window that is not positive)."""
        self.host, self.port = host, port
        self._opt = opt = Options(**options)
        self._sid: str | None = opt.session_id
        self._ledger = Ledger(opt.last_seq if opt.session_id else 0)
        self._state = _NEW
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._final: FluxError | None = None
        self._pings: dict[str, asyncio.Future] = {}
        self._ping_count = 0
        self._changed_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []  # [supervisor, heartbeat]
        self._started = False  # the first connection is up
        self.reconnects = 0  # successful reconnects
        self.resent = 0  # frames sent again after a resume (the server never read them)
        self.replayed = 0  # echoes the server replayed after a resume
        self.sessions_lost = 0

    # ---- public API ------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        """The current session's 32-hex-digit id."""
        return self._sid

    @property
    def seq(self) -> int:
        """Echoes received in the current session = the seq of the last one."""
        return self._ledger.seq

    @property
    def in_flight(self) -> int:
        """Frames sent and not yet returned by recv()."""
        return self._ledger.undelivered

    @property
    def connected(self) -> bool:
        """True while a connection is READY (False while reconnecting)."""
        return self._state == _READY

    async def send(self, payload: bytes) -> None:
        """Queues one data frame; waits while the window is full. Raises
        ValueError for a control payload (starting with FLUX_) or one over
        max_frame, and the terminal error once there is one."""
        payload = bytes(payload)
        if codec.is_control(payload):
            raise ValueError("a data payload must not start with FLUX_ (that is a control message)")
        if len(payload) > self._opt.max_frame:
            raise ValueError(f"payload of {len(payload)} bytes exceeds max_frame={self._opt.max_frame}")
        await self._wait(lambda: self._final is not None or self._state == _CLOSING
                         or self._ledger.fits(len(payload), self._opt.window, self._opt.window_bytes))
        self._raise_if_finished()
        self._ledger.sent(payload)
        writer = self._writer if self._state == _READY else None
        if writer is not None:  # else sent when the connection is back
            writer.write(codec.encode(payload))
            try:
                await writer.drain()
            except NETWORK_ERRORS:
                pass  # the reader sees the drop and resumes; the frame is kept

    async def recv(self) -> bytes:
        """The next echo. Raises SessionLost once when a resume was refused,
        and the terminal error after the last echo received."""
        await self._wait(lambda: bool(self._ledger.rx) or self._final is not None)
        if not self._ledger.rx:
            raise self._final
        item = self._ledger.take()
        self._changed()
        if isinstance(item, BaseException):
            raise item
        return item

    async def ping(self, timeout: float | None = None) -> float:
        """FLUX_PING <token>; returns the seconds until its FLUX_PONG. Sent
        again on the next connection if this one drops first."""
        self._raise_if_finished()
        self._ping_count += 1
        token = f"p{self._ping_count}"
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pings[token] = fut
        if self._state == _READY:
            self._writer.write(codec.encode(b"FLUX_PING " + token.encode()))
        start = loop.time()
        try:
            async with asyncio.timeout(timeout):
                await fut
        finally:
            self._pings.pop(token, None)
        return loop.time() - start

    def abort_connection(self) -> None:
        """Drops the current connection with an RST, as a network failure
        would (SO_LINGER 0); the client resumes as after any drop."""
        if self._writer is not None:
            wire.abort_with_rst(self._writer)

    async def close(self, bye: bool = True) -> None:
        """Ends the session with FLUX_BYE (when connected) and closes. With
        bye=False the socket is just closed (EOF): the server keeps the
        session for its resume window (another Client can resume it with
        session_id= and last_seq=). A client closed while reconnecting cannot
        say BYE either. Echoes already received can still be recv()'d; then
        recv() raises ClientClosed."""
        if self._state == _READY and self._tasks and not bye:
            self._state = _CLOSING
            self._writer.close()  # FIN, after what is queued
        elif self._state == _READY and self._tasks:
            self._state = _CLOSING
            self._changed()
            self._writer.write(codec.encode(b"FLUX_BYE"))
            try:
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), self._opt.close_timeout)
            except (asyncio.TimeoutError, *NETWORK_ERRORS):
                log.warning("no FLUX_BYE answer within %.1fs", self._opt.close_timeout)
        elif self._state != _CLOSED:
            self._state = _CLOSING
            self._changed()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:  # noqa: BLE001 - cancelled or already reported
                pass
        self._tasks.clear()
        self._drop_transport()
        self._finish(ClientClosed("client closed"))

    async def __aenter__(self) -> "Client":
        if self._state == _NEW:
            await self._start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # ---- connection life -------------------------------------------------

    async def _start(self) -> None:
        try:
            await self._open(self._opt.connect_timeout)
        except BaseException:
            self._state = _CLOSED
            raise
        self._started = True
        self._tasks.append(asyncio.create_task(self._supervise(), name="fluxclient-supervisor"))
        if self._opt.heartbeat_interval > 0:
            self._tasks.append(asyncio.create_task(self._heartbeats(), name="fluxclient-heartbeat"))

    async def _open(self, timeout: float) -> None:
        """TCP connect + handshake; on return the connection is READY."""
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await self._handshake(reader, writer)
        except BaseException:
            if writer is not None:
                writer.transport.abort()
            raise

    async def _handshake(self, reader, writer) -> None:
        if self._sid is None:
            self._sid = await wire.hello(reader, writer)
            self._ledger.seq = 0
            self._go_ready(reader, writer, [])
            return
        writer.write(codec.encode(f"FLUX_RESUME {self._sid} {self._ledger.seq}".encode()))
        command, rest = codec.split_control(await wire.read_frame(reader))
        if command == "FLUX_READY":
            self._resumed(reader, writer, rest)
        elif command == "FLUX_INVALID":
            await self._new_session(reader, writer, invalid_session(rest))
        elif command == "FLUX_ERROR":
            raise server_error(rest)
        else:
            raise ProtocolViolation(f"FLUX_RESUME answered {command!r}")

    def _resumed(self, reader, writer, ready_args: str) -> None:
        sid, server_seq = wire.parse_ready(ready_args)
        ledger = self._ledger
        replayed = server_seq - ledger.seq
        if sid != self._sid or replayed < 0 or (self._started and replayed > len(ledger.unechoed)):
            raise ProtocolViolation(f"FLUX_READY {ready_args} does not fit session {self._sid} at seq "
                                    f"{ledger.seq} with {len(ledger.unechoed)} frame(s) unechoed")
        never_read = ledger.resumed(replayed, first_connection=not self._started)
        self.replayed += replayed
        self.resent += len(never_read)
        self._go_ready(reader, writer, never_read)

    async def _new_session(self, reader, writer, cause: InvalidSession) -> None:
        # The connection is still in HANDSHAKE after FLUX_INVALID (section 8).
        old = self._sid
        sid = await wire.hello(reader, writer)
        lost = self._ledger.restart()
        self._sid = sid
        self.sessions_lost += 1
        log.warning("session %s lost (%s): new session %s, %d frame(s) unechoed", old, cause.reason, sid, len(lost))
        self._ledger.rx.append(SessionLost(old, sid, cause, lost))
        self._go_ready(reader, writer, [])

    def _go_ready(self, reader, writer, resend: list[bytes]) -> None:
        # No await from here to the state change: a send() running meanwhile
        # would be neither in `resend` nor written.
        for payload in resend:
            writer.write(codec.encode(payload))
        for token in self._pings:
            writer.write(codec.encode(b"FLUX_PING " + token.encode()))
        self._reader, self._writer = reader, writer
        if self._state in (_NEW, _RECONNECTING):
            self._state = _READY
        self._changed()

    async def _supervise(self) -> None:
        """Reads until the connection ends, then resumes or finishes."""
        while True:
            cause = await self._read_loop()
            self._drop_transport()
            if self._state in (_CLOSING, _CLOSED):
                return
            terminal = self._terminal_error(cause)
            if terminal is not None:
                self._finish(terminal)
                return
            log.info("connection of session %s dropped (%r): resuming", self._sid, cause)
            self._state = _RECONNECTING
            self._changed()
            try:
                await self._reconnect(cause)
            except FluxError as e:
                self._finish(e)
                return

    def _terminal_error(self, cause: BaseException | None) -> FluxError | None:
        if isinstance(cause, ServerError) and not isinstance(cause, RESUMABLE_ERRORS):
            return cause  # session-taken-over, frame-too-large, ...
        if isinstance(cause, ProtocolViolation):
            return cause
        if not self._opt.resume:
            if isinstance(cause, ServerError):
                return cause
            return ConnectionLost("connection lost", cause, list(self._ledger.unechoed))
        return None

    async def _reconnect(self, cause: BaseException | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._opt.reconnect_timeout
        last = cause
        for attempt in range(1 << 30):
            if attempt:
                delay = self._opt.backoff_delay(attempt)
                if loop.time() + delay >= deadline:
                    break
                await asyncio.sleep(delay)  # back-off between attempts
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await self._open(min(self._opt.connect_timeout, remaining))
                self.reconnects += 1
                return
            except (*NETWORK_ERRORS, *RESUMABLE_ERRORS) as e:
                last = e
                log.debug("reconnect attempt %d failed: %r", attempt + 1, e)
        raise ConnectionLost(f"no reconnect within {self._opt.reconnect_timeout}s", last, list(self._ledger.unechoed))

    async def _read_loop(self) -> BaseException | None:
        """Returns why the connection ended: None for the FLUX_BYE answer."""
        reader = self._reader
        try:
            while True:
                payload = await wire.read_frame(reader)
                if not codec.is_control(payload):
                    self._ledger.echoed(payload)
                    self._changed()
                    continue
                command, rest = codec.split_control(payload)
                if command == "FLUX_PONG":
                    fut = self._pings.get(rest)
                    if fut is not None and not fut.done():
                        fut.set_result(None)
                elif command == "FLUX_ERROR":
                    error = server_error(rest)
                    if error.fatal:
                        return error
                    self._ledger.rx.append(error)  # not fatal: reported in stream order
                    self._changed()
                elif command == "FLUX_BYE" and self._state == _CLOSING:
                    return None
                else:
                    return ProtocolViolation(f"unexpected {payload[:80]!r} in READY")
        except FluxError as e:
            return e
        except NETWORK_ERRORS as e:
            return e

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._opt.heartbeat_interval)  # the heartbeat period itself
            if self._state != _READY:
                continue
            writer = self._writer
            try:
                await self.ping(timeout=self._opt.heartbeat_timeout)
            except asyncio.TimeoutError:
                if writer is self._writer and self._state == _READY:
                    log.warning("heartbeat unanswered for %.1fs: dropping the connection", self._opt.heartbeat_timeout)
                    self.abort_connection()
            except FluxError:
                return

    # ---- helpers ---------------------------------------------------------

    def _drop_transport(self) -> None:
        if self._writer is not None and not self._writer.transport.is_closing():
            self._writer.transport.abort()
        self._reader = self._writer = None

    def _finish(self, error: FluxError) -> None:
        if self._final is None:
            if not hasattr(error, "unacknowledged"):
                error.unacknowledged = list(self._ledger.unechoed)
            self._final = error
        self._state = _CLOSED
        current = asyncio.current_task()
        for task in self._tasks[1:]:  # the heartbeat; the supervisor ends by itself
            if task is not current:
                task.cancel()
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(self._final)
        self._changed()

    def _raise_if_finished(self) -> None:
        if self._final is not None:
            raise self._final
        if self._state in (_CLOSING, _CLOSED):
            raise ClientClosed("client closed")

    def _changed(self) -> None:
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        while True:
            event = self._changed_event
            if predicate():
                return
            await event.wait()


class _Connect:
    """What connect() returns: await it, or use it with `async with`."""

    def __init__(self, client: Client):
        self._client = client

    def __await__(self):
        return self._start().__await__()

    async def _start(self) -> Client:
        await self._client._start()
        return self._client

    async def __aenter__(self) -> Client:
        return await self._client.__aenter__()

    async def __aexit__(self, *exc_info) -> None:
        await self._client.__aexit__(*exc_info)


def connect(host: str, port: int, **options) -> _Connect:
    """A Client connected and READY (handshake done, resume on):
    `client = await connect(...)` or `async with connect(...) as client:`.
    Options: see fluxclient.options.Options. Raises OSError / TimeoutError when the
    server cannot be reached, a ServerError (e.g. ServerFull) when it refuses."""
    return _Connect(Client(host, port, **options))
