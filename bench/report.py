#!/usr/bin/env python3
"""Render docs/benchmarks.md (and its latency plot) from a bench/run results dir.

  python3 bench/report.py RESULTS_DIR --out FILE [--plot FILE] [--template FILE]

RESULTS_DIR holds what bench/run measured: fluxbench's JSON per run
(NAME.json), flood.py's JSON (flood-N.json) and state.json (the run's settings,
load averages, commands, and the figures bench/run took from /proc and /stats
samples). Every sentence of the report is in the template (bench/report/
template.md, format described at its top); this program only computes figures
and picks blocks. Python 3 standard library only; gnuplot draws the plot.
"""

import argparse
import json
import os
import sys

from reportgen.capacity import churn_section, flood_section, scale_section, scaling_section
from reportgen.costs import metrics_section, replay_section, scrape_section
from reportgen.figures import Results
from reportgen.latency import curve_points, curve_section, plot, seed_section, throughput_section
from reportgen.template import Report, load_template
from reportgen.verdicts import conclusions, gaps_section

HERE = os.path.dirname(os.path.abspath(__file__))


def header(t, st):
    note = t.text("header_note", note=st["rerun_note"]) + "\n" if st.get("rerun_note") else ""
    nice = st.get("nice")
    commit = st["commit"]
    if st.get("uncommitted"):
        commit = t.text("uncommitted", commit=commit)
    return t.text(
        "header",
        scale=st["scale"],
        date=st["date"],
        machine=st["machine"],
        load_start=st["load_start"],
        load_end=st["load_end"],
        note=note,
        priority=t.text("priority_nice", nice=nice) if nice else t.text("priority_default"),
        commit=commit,
    )


def speed_section(t, results_dir):
    """Profile 10: bench/speed.py's own Markdown, as it printed it."""
    try:
        with open(os.path.join(results_dir, "speed.md")) as f:
            printed = f.read().strip()
    except OSError:
        printed = ""
    return t.text("speed", printed=printed or t.text("not_measured"))


def render(t, results_dir, plot_path=None):
    with open(os.path.join(results_dir, "state.json")) as f:
        st = json.load(f)
    r = Results(results_dir)
    has = set(st["profiles"]).__contains__
    points = curve_points(r, st) if has("curve") else []
    parts = [header(t, st)]
    if has("seed"):
        parts.append(seed_section(t, r, st))
    if has("throughput"):
        parts.append(throughput_section(t, r, st))
    if has("curve"):
        plot_name = os.path.basename(plot_path) if plot_path else "benchmarks-latency.png"
        parts.append(curve_section(t, st, points, plot_name))
        if plot_path:
            plot(t, st, points, results_dir, plot_path)
    if has("scale"):
        parts.append(scale_section(t, r, st))
    if has("metrics"):
        parts.append(metrics_section(t, r, st))
    if has("scrape"):
        parts.append(scrape_section(t, r, st))
    if has("churn"):
        parts.append(churn_section(t, r, st))
    if has("replay"):
        parts.append(replay_section(t, r, st))
    if has("scaling"):
        parts.append(scaling_section(t, r, st))
    if has("flood"):
        parts.append(flood_section(t, r, st))
    if has("speed"):
        parts.append(speed_section(t, results_dir))
    if st["full"]:
        # Kept from runs of other tools / by hand, then the full run's verdicts.
        parts += [t.text("flood_before_after"), t.text("speed_before_after"), t.text("cluster"), t.text("store")]
        parts += [gaps_section(t, r, st), conclusions(t, r, st, points)]
    parts.append(t.text("commands", commands="\n".join(st["commands"]), results_dir=st["results_dir"]))
    return "\n\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="bench/run's results directory (state.json and the JSON figures)")
    ap.add_argument("--out", required=True, help="the Markdown file to write ('-' for stdout)")
    ap.add_argument("--plot", help="the latency plot (PNG) to draw, when the curve profile ran")
    ap.add_argument("--template", default=os.path.join(HERE, "report", "template.md"))
    args = ap.parse_args()
    doc = render(Report(load_template(args.template)), args.results, args.plot)
    if args.out == "-":
        sys.stdout.write(doc)
    else:
        with open(args.out, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
