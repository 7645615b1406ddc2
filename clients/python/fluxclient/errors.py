"""Typed exceptions: one class per FLUX_ERROR code and FLUX_INVALID reason
(docs/protocol.md sections 6 and 8), and the client's own conditions.

    FluxError
    ├── ServerError            FLUX_ERROR <code>; .code, .fatal
    │   ├── HandshakeExpected, HandshakeTimeout, UnsupportedVersion,
    │   │   FrameTooLarge, IdleTimeout, ServerFull, ServerShutdown,
    │   │   SessionTakenOver                                  (fatal)
    │   └── UnknownCommand, AlreadyReady                      (not fatal)
    ├── InvalidSession         FLUX_INVALID <reason>; .reason
    │   └── SessionUnknown, BadSeq, ReplayGap
    ├── SessionLost            resume refused, a new session was started
    ├── ConnectionLost         could not reconnect within reconnect_timeout
    ├── ProtocolViolation      the server broke the protocol (e.g. a wrong echo)
    └── ClientClosed           the client was closed
"""

from __future__ import annotations

import asyncio

__all__ = [
    "FluxError", "ServerError", "HandshakeExpected", "HandshakeTimeout", "UnsupportedVersion",
    "FrameTooLarge", "IdleTimeout", "UnknownCommand", "AlreadyReady", "ServerFull", "ServerShutdown",
    "SessionTakenOver", "SERVER_ERRORS", "InvalidSession", "SessionUnknown", "BadSeq", "ReplayGap",
    "INVALID_REASONS", "server_error", "invalid_session", "SessionLost", "ConnectionLost",
    "ProtocolViolation", "ClientClosed",
]


class FluxError(Exception):
    """Base of every fluxclient exception."""


class ServerError(FluxError):
    """The server sent FLUX_ERROR <code>."""

    code = ""
    fatal = True

    def __init__(self, code: str | None = None):
        if code is not None:
            self.code = code
        super().__init__(f"FLUX_ERROR {self.code}")


def _server_error(name: str, code: str, fatal: bool = True) -> type[ServerError]:
    return type(name, (ServerError,), {"code": code, "fatal": fatal, "__doc__": f"FLUX_ERROR {code}"})


HandshakeExpected = _server_error("HandshakeExpected", "handshake-expected")
HandshakeTimeout = _server_error("HandshakeTimeout", "handshake-timeout")
UnsupportedVersion = _server_error("UnsupportedVersion", "unsupported-version")
FrameTooLarge = _server_error("FrameTooLarge", "frame-too-large")
IdleTimeout = _server_error("IdleTimeout", "idle-timeout")
UnknownCommand = _server_error("UnknownCommand", "unknown-command", fatal=False)
AlreadyReady = _server_error("AlreadyReady", "already-ready", fatal=False)
ServerFull = _server_error("ServerFull", "server-full")
ServerShutdown = _server_error("ServerShutdown", "server-shutdown")
SessionTakenOver = _server_error("SessionTakenOver", "session-taken-over")

SERVER_ERRORS: dict[str, type[ServerError]] = {
    cls.code: cls
    for cls in (HandshakeExpected, HandshakeTimeout, UnsupportedVersion, FrameTooLarge, IdleTimeout,
                UnknownCommand, AlreadyReady, ServerFull, ServerShutdown, SessionTakenOver)
}


class InvalidSession(FluxError):
    """The server answered a FLUX_RESUME with FLUX_INVALID <reason>."""

    reason = ""

    def __init__(self, reason: str | None = None):
        if reason is not None:
            self.reason = reason
        super().__init__(f"FLUX_INVALID {self.reason}")


SessionUnknown = type("SessionUnknown", (InvalidSession,), {"reason": "session-unknown"})
BadSeq = type("BadSeq", (InvalidSession,), {"reason": "bad-seq"})
ReplayGap = type("ReplayGap", (InvalidSession,), {"reason": "replay-gap"})

INVALID_REASONS: dict[str, type[InvalidSession]] = {
    cls.reason: cls for cls in (SessionUnknown, BadSeq, ReplayGap)
}


def server_error(code: str) -> ServerError:
    """The exception for FLUX_ERROR <code> (a plain ServerError for a code
    this client does not know, treated as fatal)."""
    cls = SERVER_ERRORS.get(code)
    return cls() if cls else ServerError(code)


def invalid_session(reason: str) -> InvalidSession:
    cls = INVALID_REASONS.get(reason)
    return cls() if cls else InvalidSession(reason)


class SessionLost(FluxError):
    """A resume was refused (``cause``: SessionUnknown, BadSeq or ReplayGap)
    and the client started a new session with FLUX_HELLO.

    Raised once by recv(), in stream order: every echo of the old session the
    client had received was returned before it, echoes of the new session
    come after it. ``unacknowledged`` holds, in order, the payloads sent to
    the old session whose echo never came back: the server may or may not
    have read them, and they are not sent again (re-send them if the
    application wants them on the new session). The client goes on working.
    """

    def __init__(self, old_session_id: str, new_session_id: str, cause: InvalidSession,
                 unacknowledged: list[bytes]):
        self.old_session_id = old_session_id
        self.new_session_id = new_session_id
        self.cause = cause
        self.unacknowledged = unacknowledged
        super().__init__(f"session {old_session_id} lost ({cause.reason}); new session {new_session_id}; "
                         f"{len(unacknowledged)} frame(s) sent without an echo")


class ConnectionLost(FluxError):
    """Reconnecting failed for reconnect_timeout seconds (or resuming is off):
    the client is finished. ``unacknowledged`` as in SessionLost; ``cause``
    is the last error seen."""

    def __init__(self, message: str, cause: BaseException | None, unacknowledged: list[bytes]):
        self.cause = cause
        self.unacknowledged = unacknowledged
        super().__init__(f"{message}: {cause!r}; {len(unacknowledged)} frame(s) sent without an echo")


class ProtocolViolation(FluxError):
    """The server sent something the protocol does not allow here."""


class ClientClosed(FluxError):
    """The client was closed (close() or a fatal error already reported)."""


# Connection-ending errors after which resuming makes sense: the session
# survives them on the server (or the server is gone, and a refused resume
# will say so). Not exported: the Client's classification, not an API.
RESUMABLE_ERRORS = (IdleTimeout, ServerShutdown, ServerFull, HandshakeTimeout)
NETWORK_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError)
