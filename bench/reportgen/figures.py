"""Figures from a bench/run results directory, and how they are printed.

Results reads the JSON files (fluxbench's NAME.json, flood.py's flood-N.json);
the helpers here turn their numbers into table cells the way bench/run's jq
did ("n/a" for what a run did not report, jq's rounding, lower medians), so a
report re-rendered from old results reads as before. Shared by every section
module; nothing here knows a profile."""

import decimal
import glob
import json
import math
import os

NA = "n/a"
SEP = " / "  # between the items of a list in one table cell


def num(v):
    """A number, or None for null / "n/a" / "nan" / ""."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def raw(v):
    """As jq -r prints it ("n/a" for null)."""
    if v is None or v == "":
        return NA
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def fmt(spec, v):
    x = num(v)
    return NA if x is None else spec % x


def f0(v):
    return fmt("%.0f", v)


def f1(v):
    return fmt("%.1f", v)


def jround(x):
    """jq's round: half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def median(values):
    """The lower median of the numbers among values, as given (a string stays
    a string: "1.000"), or None."""
    xs = sorted((v for v in values if num(v) is not None), key=num)
    return xs[(len(xs) + 1) // 2 - 1] if xs else None


def ratio(a, b):
    """A / B to 3 decimals, as a string ("0.000" when B is not positive)."""
    a, b = num(a) or 0.0, num(b) or 0.0
    return "%.3f" % (a / b if b > 0 else 0)


def kib(v):
    return fmt("%.1f", None if num(v) is None else num(v) / 1024)


def mib(v):
    return fmt("%.1f", None if num(v) is None else num(v) / 1048576)


def kib_to_mib(v):
    """KiB from /proc to MiB ("0.0" for a missing sample, as bench/run did)."""
    return "%.1f" % ((num(v) or 0) / 1024)


def below(v, limit):
    x = num(v)
    return None if x is None else x < limit


def at_least(v, limit):
    x = num(v)
    return None if x is None else x >= limit


def get(d, path, default=None):
    for key in path.split("."):
        if not isinstance(d, dict) or d.get(key) is None:
            return default
        d = d[key]
    return d


class Results:
    """The JSON files of one results directory."""

    def __init__(self, directory):
        self.dir = directory
        self.cache = {}

    def __call__(self, name, path=None):
        if name not in self.cache:
            try:
                with open(os.path.join(self.dir, name + ".json")) as f:
                    self.cache[name] = json.load(f)
            except (OSError, ValueError):
                self.cache[name] = None
        doc = self.cache[name]
        return doc if path is None else get(doc, path)

    def errors_over(self, pattern):
        """The sum of .errors over the runs matching pattern (None if none)."""
        names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(self.dir, pattern)))
        errors = [self(n, "errors") for n in names]
        errors = [e for e in errors if e is not None]
        return sum(errors) if errors else None

    def per_second(self, name, key):
        return sorted(s[key] for s in self(name, "seconds") or [] if s.get(key) is not None)


def sorted_mid(xs):
    """jq's .[length / 2 | floor] of a sorted list."""
    return xs[len(xs) // 2] if xs else None


def cpu_ns(r, name):
    """The gateway's CPU time per echoed frame, in ns."""
    cpu, fps = r(name, "server.cpu_percent"), r(name, "throughput.frames_per_second") or 0
    return jround(cpu / 100 * 1e9 / fps) if cpu and fps > 0 else None


def two_decimals(v):
    """A ratio string such as "1.355" to 2 decimals, half up as one reads it."""
    return str(decimal.Decimal(str(v)).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP))


def cost_pct(ratio_str):
    """(1 - r) * 100, to one decimal."""
    return "%.1f" % ((1 - float(ratio_str)) * 100)


def fps(r, prefix, rounds):
    """frames/s of the runs PREFIX-1 .. PREFIX-rounds."""
    return [r(f"{prefix}-{i}", "throughput.frames_per_second") for i in range(1, rounds + 1)]


def on_off(r, prefix, rounds):
    """Per-round (on, off, "on/off ratio") of frames/s for mo-* or rp-* runs."""
    out = []
    for i in range(1, rounds + 1):
        on = r(f"{prefix}-on-{i}", "throughput.frames_per_second")
        off = r(f"{prefix}-off-{i}", "throughput.frames_per_second")
        out.append((on, off, ratio(on, off)))
    return out


def per_session(frames, conns):
    x = num(frames)
    return NA if x is None else "%.0f" % (x / conns)
