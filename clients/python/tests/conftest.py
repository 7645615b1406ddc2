"""Helpers for the fluxclient tests: the real gateway as a child process, a
TCP proxy that can cut connections, and bounded waits.

The gateway binary is $FLUX_GATEWAY_BIN (default build/gateway/flux-gateway),
started with --port 0 --metrics-port 0 unless a port is given; its
`listening port=<p> metrics_port=<m>` line gives the ports.
"""

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))  # clients/python: nothing is installed
from fluxclient.wire import abort_with_rst  # noqa: E402 - the RST the client itself uses

GATEWAY_BIN = os.environ.get("FLUX_GATEWAY_BIN", os.path.join(REPO, "build", "gateway", "flux-gateway"))
START_TIMEOUT_S = 15.0


class Gateway:
    """flux-gateway as a child; stopped with SIGTERM (SIGKILL after 10 s)."""

    def __init__(self, *flags, port=0):
        if not os.access(GATEWAY_BIN, os.X_OK):
            pytest.fail(f"no gateway binary at {GATEWAY_BIN} (set FLUX_GATEWAY_BIN)")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [GATEWAY_BIN, "--port", str(port), "--metrics-port", "0", *flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr)
        lines = queue.Queue()
        threading.Thread(target=self._drain, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"gateway printed no listening line in {START_TIMEOUT_S}s: {self.log()}")
            if line is None:
                self.stop()
                raise RuntimeError(f"gateway exited before listening: {self.log()}")
            m = re.search(r"listening port=(\d+) metrics_port=(\d+)", line)
            if m:
                self.port, self.metrics_port = int(m.group(1)), int(m.group(2))
                return

    def _drain(self, lines):
        for raw in self.proc.stdout:
            lines.put(raw.decode(errors="replace"))
        lines.put(None)

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.stderr.close()


def start_gateway_on(port, *flags, timeout=START_TIMEOUT_S):
    """A gateway on a given port, retried while the port is still taken."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Gateway(*flags, port=port)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise


@pytest.fixture
def gateway():
    """Factory: gateway(*flags) starts one; all are stopped at the end."""
    started = []

    def start(*flags):
        gw = Gateway(*flags)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def run(coro, timeout=20.0):
    """Runs one test coroutine, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(predicate, timeout, what):
    """Polls predicate() every 10 ms until true; fails after timeout seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Proxy:
    """A TCP relay in front of the gateway that can hold bytes in either
    direction and cut every connection with an RST (or a plain FIN)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.pairs = []  # (client writer, upstream writer)
        self.hold_up = False  # client -> gateway bytes held
        self.hold_down = False  # gateway -> client bytes held
        self.held_up = 0
        self.held_down = 0
        self.accepted = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            abort_with_rst(writer)
            return
        self.pairs.append((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer, "up"), self._pump(up_reader, writer, "down"),
                             return_exceptions=True)

    async def _pump(self, reader, writer, direction):
        held = bytearray()
        while True:
            data = await reader.read(65536)
            if not data:
                writer.write(bytes(held))
                writer.close()
                return
            if getattr(self, f"hold_{direction}"):
                held += data
                setattr(self, f"held_{direction}", getattr(self, f"held_{direction}") + len(data))
                continue
            writer.write(bytes(held) + data)
            held.clear()
            await writer.drain()

    def reset_all(self):
        """RST on both sides of every relayed connection; held bytes are lost."""
        for down, up in self.pairs:
            abort_with_rst(down)
            abort_with_rst(up)
        self.pairs.clear()
        self.hold_up = self.hold_down = False
        self.held_up = self.held_down = 0

    def eof_all(self):
        """FIN to the client (EOF without FLUX_BYE), RST to the gateway."""
        for down, up in self.pairs:
            down.close()
            abort_with_rst(up)
        self.pairs.clear()

    async def close(self):
        self.reset_all()
        self.server.close()
        await self.server.wait_closed()
