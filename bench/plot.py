"""Plots of one bench/run.py result: latency versus rate per scenario, ours beside the peer.

    .venv/bin/python bench/plot.py artifacts/bench/bench-<time>.json [--out docs/benchmarks]

S3, S4 and S5 plot p50 and p99 of complete messages against the offered rate; S1, S2 and S6
have no rate axis and plot their one measurement per server (memory per connection, connect
latency, history page latency).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {"ours": "tab:blue", "peer": "tab:orange"}


def rate_plot(ax: Any, by_server: dict[str, Any], title: str) -> None:
    for kind, result in by_server.items():
        if not isinstance(result, dict) or "steps" not in result:
            continue
        steps = result["steps"]
        rates = [s["rate"] for s in steps]
        colour = COLOURS.get(kind)
        ax.plot(
            rates, [s["latency"]["p50_ms"] for s in steps], "o--", color=colour, label=f"{kind} p50"
        )
        ax.plot(
            rates, [s["latency"]["p99_ms"] for s in steps], "s-", color=colour, label=f"{kind} p99"
        )
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (messages/s)")
    ax.set_ylabel("latency until ack and delivery (ms)")
    ax.set_title(title)
    ax.legend(fontsize="small")


def bars(ax: Any, values: dict[str, float], title: str, unit: str) -> None:
    kinds = list(values)
    ax.bar(kinds, [values[k] for k in kinds], color=[COLOURS.get(k) for k in kinds])
    ax.set_ylabel(unit)
    ax.set_title(title)


def percentile_bars(ax: Any, by_server: dict[str, Any], title: str) -> None:
    labels = ("p50_ms", "p99_ms", "p999_ms")
    width = 0.35
    for offset, (kind, result) in enumerate(by_server.items()):
        xs = [i + offset * width for i in range(len(labels))]
        ax.bar(
            xs, [result["latency"][k] for k in labels], width, label=kind, color=COLOURS.get(kind)
        )
    ax.set_xticks([i + width / 2 for i in range(len(labels))], ["p50", "p99", "p99.9"])
    ax.set_ylabel("ms")
    ax.set_title(title)
    ax.legend(fontsize="small")


def plot(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    tag = " (quick)" if report.get("quick") else ""
    written = []
    for scenario, by_server in report["results"].items():
        if scenario == "S4":
            sizes = sorted({k for r in by_server.values() for k in r if k.isdigit()}, key=int)
            fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
            for ax, size in zip(axes[0], sizes, strict=True):
                rate_plot(
                    ax,
                    {k: r.get(size) for k, r in by_server.items()},
                    f"S4 fan-out, group of {size}{tag}",
                )
        else:
            fig, ax = plt.subplots(figsize=(6.5, 4.5))
            if scenario in ("S3", "S5"):
                name = "S3 direct messages" if scenario == "S3" else "S5 durable messages"
                rate_plot(ax, by_server, f"{name}{tag}")
            elif scenario == "S1":
                bars(
                    ax,
                    {k: r["kb_per_connection"] for k, r in by_server.items()},
                    f"S1 memory per idle connection{tag}",
                    "KB per connection",
                )
            elif scenario == "S2":
                percentile_bars(ax, by_server, f"S2 connect burst: connect latency{tag}")
            else:
                percentile_bars(ax, by_server, f"S6 history page latency{tag}")
        fig.tight_layout()
        path = out / f"{scenario.lower()}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--out", type=Path, help="directory (default: beside the result)")
    args = parser.parse_args()
    report = json.loads(args.result.read_text())
    out = args.out or args.result.with_suffix("")
    for path in plot(report, out):
        print(path)


if __name__ == "__main__":
    main()
