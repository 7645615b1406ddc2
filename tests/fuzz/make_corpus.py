#!/usr/bin/env python3
"""Writes the seed corpus of gateway_fuzzer (tests/fuzz/corpus/seed-*).

The input format is decoded by tests/fuzz/gateway_fuzzer.cc (see its header
comment); this file is its encoder. Run it after changing the format:

    python3 tests/fuzz/make_corpus.py
    python3 tests/fuzz/make_corpus.py --describe FILE   (prints an input's actions)

Other files in the corpus are findings kept as they were found (regression-*:
gateway bugs, found-*: harness bugs); this script never touches them.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Ops (low nibble of the op byte; the high nibble picks the client).
OPEN, RAW, FRAME, WRITE, TOGGLE_READ, SHUT_WRITE, CLOSE, RESET, SETTLE, STEP, SHUTDOWN, FRAME_W, RAW_W = range(13)
# Frame kinds.
(HELLO, HELLO1, HELLO_V, PING, PING_TOKEN, BYE, DATA, DATA_BIG, RESUME_KNOWN,
 RESUME_OTHER, UNKNOWN_CONTROL, HEADER_ONLY) = range(12)


def config(max_frame=3, max_pending=3, replay=0, tight=False, budget1=False, max_conn=2, small_bufs=False,
           two_reactors=False):
    """max_frame: 0..3 -> 64, 1024, 16384, 65536; max_pending: 0..3 -> 128, 4096, 65536, 4 MiB;
    replay: 0..3 -> (256 frames, 1 MiB), (4, 1 MiB), (8, 256 B), off; max_conn: 0..3 -> 2, 3, 100000, 100000;
    two_reactors: multi-reactor mode (client i on reactor i mod 2)."""
    a = max_frame | (max_pending << 2) | (replay << 4) | (int(tight) << 6) | (int(budget1) << 7)
    b = max_conn | (int(small_bufs) << 2) | (int(two_reactors) << 3)
    return bytes([a, b])


def op(code, client=0):
    return bytes([code | (client << 4)])


def short(data):
    assert len(data) < 256
    return bytes([len(data)]) + data


def frame_w(kind_args, client=0):
    return op(FRAME_W, client) + kind_args


def frame_q(kind_args, client=0):
    return op(FRAME, client) + kind_args


def hello():
    return bytes([HELLO])


def data(payload):
    return bytes([DATA]) + short(payload)


def ping(token=None):
    return bytes([PING]) if token is None else bytes([PING_TOKEN]) + short(token)


def resume_known(session=0, mode=0, k=0):
    """mode: 0 last-seq = seen, 1 seen - k, 2 seen + 1 + k, 3 zero, 4 u64 max."""
    return bytes([RESUME_KNOWN, session, mode, k])


SEEDS = {
    "hello-echo": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"hello")) + frame_w(data(b"world")),
    "hello1-empty-data": config() + op(OPEN) + frame_w(bytes([HELLO1])) + frame_w(data(b"")),
    "ping": config() + op(OPEN) + frame_w(hello()) + frame_w(ping()) + frame_w(ping(b"t-42"))
    + frame_w(ping(b"a b  c")) + frame_w(ping(b"")),
    "bye": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + frame_w(bytes([BYE])),
    "bye-then-more": config() + op(OPEN) + frame_q(hello()) + frame_q(bytes([BYE])) + frame_q(data(b"late"))
    + op(WRITE) + bytes([0]),
    "resume-after-close": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + frame_w(data(b"y"))
    + op(CLOSE) + op(OPEN) + frame_w(resume_known(), 1) + frame_w(data(b"z"), 1),
    "resume-replay": config() + op(OPEN) + frame_w(hello())
    + b"".join(frame_w(data(bytes([65 + i]) * (i + 1))) for i in range(5))
    + op(RESET) + op(OPEN) + frame_w(resume_known(0, 1, 3), 1),
    "resume-takeover": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"one"))
    + op(OPEN) + frame_w(resume_known(0, 0), 1) + frame_w(data(b"two"), 1) + frame_w(data(b"three"), 0),
    "resume-takeover-inflight": config() + op(OPEN) + frame_w(hello()) + op(SETTLE)
    + frame_q(data(b"a")) + frame_q(data(b"b")) + op(WRITE) + bytes([0])
    + op(OPEN) + frame_w(resume_known(0, 0), 1),
    "resume-bad-seq": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + op(SHUT_WRITE)
    + op(SETTLE) + op(OPEN) + frame_w(resume_known(0, 2, 5), 1) + frame_w(resume_known(0, 4), 1)
    + frame_w(hello(), 1),
    "resume-gap-detached": config(replay=1) + op(OPEN) + frame_w(hello())
    + b"".join(frame_w(data(b"d%d" % i)) for i in range(10)) + op(CLOSE)
    + op(OPEN) + frame_w(resume_known(0, 3), 1) + frame_w(resume_known(0, 0), 1) + frame_w(hello(), 1),
    "resume-replay-off": config(replay=3) + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + op(CLOSE)
    + op(OPEN) + frame_w(resume_known(0, 0), 1) + frame_w(data(b"y"), 1),
    "resume-after-bye": config() + op(OPEN) + frame_w(hello()) + frame_w(bytes([BYE])) + op(OPEN)
    + frame_w(resume_known(0, 0), 1),
    "resume-unknown-forms": config() + op(OPEN)
    + b"".join(frame_w(bytes([RESUME_OTHER, m]) + (short(b"zz 1") if m == 1 else b"")) for m in range(8)),
    "invalid-then-hello": config() + op(OPEN) + frame_w(bytes([RESUME_OTHER, 0])) + frame_w(hello())
    + frame_w(data(b"after invalid")),
    "oversize-header-ready": config() + op(OPEN) + frame_w(hello()) + frame_w(bytes([HEADER_ONLY]) + struct.pack(">I", 65537)),
    "oversize-first-frame": config() + op(OPEN) + frame_w(bytes([HEADER_ONLY]) + b"\xff\xff\xff\xff"),
    "oversize-small-max": config(max_frame=0) + op(OPEN) + frame_w(hello()) + frame_w(data(b"a" * 64))
    + frame_w(data(b"b" * 65)),
    "big-frames": config(max_frame=1) + op(OPEN) + frame_w(hello()) + frame_w(bytes([DATA_BIG, 200, 3]))
    + frame_w(bytes([DATA_BIG, 201, 4])),
    "max-frame-64k": config() + op(OPEN) + frame_w(hello()) + frame_w(bytes([DATA_BIG, 5, 1]))
    + frame_w(bytes([DATA_BIG, 4, 2])),
    "split-headers": config() + op(OPEN) + frame_q(hello()) + frame_q(data(b"split me"))
    + b"".join(op(WRITE) + bytes([1]) for _ in range(8)) + op(WRITE) + bytes([0]),
    "split-everywhere": config(budget1=True) + op(OPEN) + frame_q(hello()) + frame_q(ping(b"p"))
    + frame_q(data(b"abcdef")) + b"".join(op(WRITE) + bytes([3]) for _ in range(20)),
    "coalesced": config() + op(OPEN) + frame_q(hello()) + b"".join(frame_q(data(b"c%d" % i)) for i in range(30))
    + op(WRITE) + bytes([0]),
    "garbage-first": config() + op(OPEN) + op(RAW_W) + short(bytes(range(0, 200, 3))),
    "garbage-ready": config() + op(OPEN) + frame_w(hello()) + op(RAW_W) + short(b"\x00\x00\x00\x03abc\x00\x00\x00\x05FLUX_\x00\x00"),
    "data-first": config() + op(OPEN) + frame_w(data(b"not a hello")),
    "ping-first": config() + op(OPEN) + frame_w(ping()),
    "unsupported-version": config() + op(OPEN) + frame_w(bytes([HELLO_V, 0])),
    "hello-odd-versions": config() + b"".join(op(OPEN, i) + frame_w(bytes([HELLO_V, v]), i) for i, v in enumerate([2, 3, 4, 6])),
    "already-ready-unknown": config() + op(OPEN) + frame_w(hello()) + frame_w(hello()) + frame_w(resume_known())
    + frame_w(bytes([UNKNOWN_CONTROL]) + short(b"X")) + frame_w(bytes([UNKNOWN_CONTROL]) + short(b""))
    + frame_w(data(b"FLUX_hello")) + frame_w(data(b"flux_hello")),
    "shutdown": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + op(OPEN) + op(SHUTDOWN) + op(SETTLE),
    "server-full": config(max_conn=0) + op(OPEN) + op(OPEN) + op(OPEN) + frame_w(hello(), 2) + frame_w(hello(), 0),
    "backpressure": config(max_pending=0, small_bufs=True) + op(OPEN) + frame_w(hello()) + op(TOGGLE_READ)
    + b"".join(frame_w(bytes([DATA_BIG, 2, i])) for i in range(6)) + op(STEP) + op(TOGGLE_READ) + op(SETTLE),
    "backpressure-close": config(max_pending=1, small_bufs=True) + op(OPEN) + frame_w(hello()) + op(TOGGLE_READ)
    + b"".join(frame_w(bytes([DATA_BIG, 3, i])) for i in range(8)) + op(CLOSE),
    "half-close": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + frame_q(data(b"partial"))
    + op(WRITE) + bytes([6]) + op(SHUT_WRITE),
    "half-close-handshake": config() + op(OPEN) + op(RAW_W) + short(b"\x00\x00") + op(SHUT_WRITE),
    "reset": config() + op(OPEN) + frame_w(hello()) + frame_w(data(b"x")) + op(RESET),
    "reset-handshake": config() + op(OPEN) + op(RAW_W) + short(b"\x00\x00\x00\x0aFLUX_") + op(RESET),
    "tight-replay-memory": config(tight=True) + op(OPEN) + frame_w(hello())
    + b"".join(frame_w(bytes([DATA_BIG, 1, i])) for i in range(6)) + op(CLOSE) + op(OPEN)
    + frame_w(hello(), 1) + frame_w(bytes([DATA_BIG, 2, 9]), 1) + op(OPEN)
    + frame_w(resume_known(0, 3), 2),
    "small-replay-bytes": config(replay=2) + op(OPEN) + frame_w(hello())
    + b"".join(frame_w(data(bytes([97 + i]) * 60)) for i in range(6)) + op(CLOSE) + op(OPEN)
    + frame_w(resume_known(0, 1, 4), 1) + frame_w(resume_known(0, 1, 3), 1),
    # Control words at the edges of the grammar (docs/protocol.md, decisions 3, 4, 5, 9).
    "control-edges-ready": config() + op(OPEN) + frame_w(hello()) + b"".join(
        frame_w(data(p)) for p in [b"FLUX_BYE ", b"FLUX_BYE x", b"FLUX_BYEx", b"FLUX_PINGx", b"FLUX_PING  a",
                                   b"FLUX_HELLO", b"FLUX_HELLO 2", b"FLUX_RESUME", b"FLUX_", b"FLUX", b"flux_bye",
                                   b"FLUX_READY x 0", b"FLUX_ERROR x"]) + frame_w(bytes([BYE])),
    "control-edges-handshake": config() + b"".join(
        op(OPEN) + frame_w(data(p), i) + op(CLOSE, i) for i, p in enumerate(
            [b"FLUX_HELLO ", b"FLUX_HELLO  1", b"FLUX_HELLOx", b"FLUX_HELLO 1 1", b"FLUX_RESUME x",
             b"FLUX_RESUME x 1 2", b"FLUX_RESUME  1", b"FLUX_RESUME x -1"])),
    "two-sessions": config() + op(OPEN) + op(OPEN) + frame_w(hello(), 0) + frame_w(hello(), 1)
    + frame_w(data(b"a"), 0) + frame_w(data(b"b"), 1) + op(CLOSE, 0) + op(OPEN)
    + frame_w(resume_known(1, 0), 2) + frame_w(resume_known(0, 0), 2),
}


OP_NAMES = ["open", "queue-raw", "queue-frame", "write", "toggle-read", "shut-write", "close", "reset",
            "settle", "step", "shutdown", "frame+write", "raw+write"]
KIND_NAMES = ["hello", "hello-1", "hello-version", "ping", "ping-token", "bye", "data", "data-big",
              "resume-known", "resume-other", "unknown-control", "header-only"]


def describe(data):
    """Yields one line per action of an input, as gateway_fuzzer decodes it."""
    pos = 0

    def u8():
        nonlocal pos
        v = data[pos] if pos < len(data) else 0
        pos += 1
        return v

    def take(n):
        nonlocal pos
        out = data[pos:pos + n]
        pos += n
        return out

    a, b = u8(), u8()
    yield (f"config: max-frame={[64, 1024, 16384, 65536][a & 3]} max-pending={[128, 4096, 65536, 4 << 20][(a >> 2) & 3]}"
           f" replay={[(256, 1 << 20), (4, 1 << 20), (8, 256), (0, 0)][(a >> 4) & 3]} tight-replay-memory={(a >> 6) & 1}"
           f" read-budget={1 if a >> 7 else 16} max-connections={[2, 3, 100000, 100000][b & 3]} small-buffers={(b >> 2) & 1}")
    actions = 0
    while pos < len(data) and actions < 96:
        byte = u8()
        code, client = (byte & 15) % 13, byte >> 4
        line = f"{OP_NAMES[code]} client~{client}"
        if code in (RAW, RAW_W):
            line += f" {take(u8())!r}"
        elif code in (FRAME, FRAME_W):
            kind = u8() % 12
            line += f" {KIND_NAMES[kind]}"
            if kind in (HELLO_V,):
                line += f" #{u8()}"
            elif kind in (PING_TOKEN, DATA, UNKNOWN_CONTROL):
                line += f" {take(u8())!r}"
            elif kind == DATA_BIG:
                line += f" size#{u8()} fill#{u8()}"
            elif kind == RESUME_KNOWN:
                line += f" session#{u8()} mode={u8() % 5} k={u8()}"
            elif kind == RESUME_OTHER:
                mode = u8() % 8
                line += f" mode={mode}" + (f" {take(u8())!r}" if mode == 1 else "")
            elif kind == HEADER_ONLY:
                line += f" length={int.from_bytes(take(4).ljust(4, bytes(1)), 'big')}"
        elif code == WRITE:
            line += f" up-to={u8() or 'all'}"
        yield line
        actions += 1


# Multi-reactor mode: every resume and shutdown seed again on two reactors,
# where client 1 (reactor 1) resumes client 0's session (reactor 0) by a
# hand-off; plus one where reactor 0 runs ahead while the hand-off waits.
TWO_REACTORS = 0x08
for _name in [n for n in SEEDS if n.startswith(("resume-", "shutdown"))]:
    _seed = SEEDS[_name]
    SEEDS["two-reactors-" + _name] = _seed[:1] + bytes([_seed[1] | TWO_REACTORS]) + _seed[2:]
# --proxy-protocol: clients 0 and 1 open with a valid PROXY v2 header,
# client 2 with a malformed one (closed without a reply).
PROXY = 0x10
SEEDS["proxy-clients-and-a-malformed-header"] = (
    config() [:1] + bytes([config()[1] | PROXY]) + op(OPEN) + frame_w(hello()) + frame_w(data(b"a"))
    + op(OPEN) + frame_w(resume_known(0, 0), 1) + op(OPEN) + frame_w(hello(), 2) + op(SETTLE))
SEEDS["two-reactors-proxy-handoff"] = (
    config(two_reactors=True)[:1] + bytes([config(two_reactors=True)[1] | PROXY]) + op(OPEN)
    + frame_w(hello()) + frame_w(data(b"x")) + op(CLOSE) + op(OPEN) + frame_w(resume_known(0, 0), 1)
    + frame_w(data(b"y"), 1))
SEEDS["two-reactors-handoff-vs-owner-traffic"] = (
    config(two_reactors=True) + op(OPEN) + frame_w(hello()) + frame_w(data(b"a")) + op(SETTLE)
    + op(OPEN) + frame_w(resume_known(0, 0), 1) + op(STEP, 1) + frame_w(data(b"b"), 0) + op(STEP, 0)
    + frame_w(bytes([BYE]), 0) + op(STEP, 0) + op(STEP, 1) + frame_w(data(b"c"), 1))

# Store mode: sessions in the (stub) session store, whose answers come one
# loop turn late: every session seed again, on one reactor and on two.
STORE = 0x20
for _name in [n for n in SEEDS if n.startswith(("resume-", "shutdown", "two-reactors-", "hello",
                                                "bye", "backpressure", "replay"))]:
    _seed = SEEDS[_name]
    SEEDS["store-" + _name] = _seed[:1] + bytes([_seed[1] | STORE]) + _seed[2:]


def main():
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--describe":
        with open(sys.argv[2], "rb") as f:
            for line in describe(f.read()):
                print(line)
        return
    os.makedirs(CORPUS, exist_ok=True)
    for name in os.listdir(CORPUS):
        if name.startswith("seed-"):
            os.remove(os.path.join(CORPUS, name))
    for name, payload in SEEDS.items():
        with open(os.path.join(CORPUS, "seed-" + name), "wb") as f:
            f.write(payload)
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
