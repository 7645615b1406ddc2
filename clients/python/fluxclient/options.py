"""The Client's options (fluxclient.connect(host, port, **options)), their
defaults and what each bounds. All times are in seconds. The defaults suit
the gateway's own defaults: heartbeats well inside its --idle-timeout (60 s),
reconnects inside its --resume-window (30 s), a window under its replay
buffer (256 frames, 1 MiB) so that a resume never hits replay-gap."""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass(kw_only=True)
class Options:
    # A FLUX_PING this often while connected (None or 0: none).
    heartbeat_interval: float | None = 20.0
    # A heartbeat unanswered this long drops the connection (it is resumed);
    # default: heartbeat_interval.
    heartbeat_timeout: float | None = None
    # Reconnect and resume after a drop; False: a drop is terminal.
    resume: bool = True
    # Give up reconnecting after this long.
    reconnect_timeout: float = 30.0
    # Reconnect delays double from backoff_initial to backoff_max, each scaled
    # by a random factor in [0.5, 1]; the first reconnect is immediate.
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    # Bound on one TCP connect + handshake.
    connect_timeout: float = 10.0
    # Bound on close() waiting for the FLUX_BYE answer.
    close_timeout: float = 5.0
    # Bound on frames / bytes sent and not yet recv()'d.
    window: int = 128
    window_bytes: int = 512 * 1024
    # send() refuses larger payloads (the gateway's --max-frame).
    max_frame: int = 65536
    # Resume this session at connect instead of starting one (last_seq =
    # echoes already received in it).
    session_id: str | None = None
    last_seq: int = 0

    def __post_init__(self):
        if self.window < 1 or self.window_bytes < 1:
            raise ValueError("window and window_bytes must be positive")
        self.heartbeat_interval = self.heartbeat_interval or 0.0
        self.heartbeat_timeout = self.heartbeat_timeout or self.heartbeat_interval

    def backoff_delay(self, attempt: int) -> float:
        """The pause before reconnect attempt `attempt` (0 = the first, which
        has none): doubling from backoff_initial up to backoff_max, jittered."""
        return min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
