"""The HTML report of a load test: summary, errors, latency over time, latency distribution, throughput
per second and the per-second table. Pictures are PNG files beside ``index.html`` (matplotlib, no display
needed); ``result.json`` holds the same summary as ``kefu loadtest --json``."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from kefu.loadtest.stats import Sample

PICTURES = ("latency_over_time.png", "latency_distribution.png", "throughput.png")


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def latency_over_time(samples: Sequence[Sample], timeline: Sequence[Mapping[str, Any]], path: Path) -> None:
    figure = Figure(figsize=(9, 4))
    ax = figure.add_subplot()
    ok = [s for s in samples if s.ok]
    failed = [s for s in samples if not s.ok]
    if ok:
        ax.scatter([s.scheduled_s for s in ok], [s.latency_s * 1000 for s in ok], s=3, alpha=0.25, label="request")
    if failed:
        ax.scatter(
            [s.scheduled_s for s in failed], [s.latency_s * 1000 for s in failed], s=8, c="red", marker="x",
            label="error",
        )  # fmt: skip
    for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
        points = [(row["second"] + 0.5, row[key]) for row in timeline if row[key] is not None]
        if points:
            ax.plot(*zip(*points, strict=True), style, color="black", linewidth=1.2, label=f"{key[:-3]} per second")
    ax.set_xlabel("scheduled send time (s)")
    ax.set_ylabel("latency from scheduled time (ms)")
    ax.set_yscale("log")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Latency over time")
    _save(figure, path)


def latency_distribution(samples: Sequence[Sample], path: Path) -> None:
    figure = Figure(figsize=(9, 4))
    hist, cdf = figure.subplots(1, 2)
    values = np.array([s.latency_s * 1000 for s in samples if s.ok])
    if values.size:
        hist.hist(values, bins=60, color="#4477aa")
        ordered = np.sort(values)
        cdf.plot(ordered, np.arange(1, ordered.size + 1) / ordered.size, color="#4477aa")
        for q in (50, 90, 99):
            cdf.axvline(float(np.percentile(values, q)), linestyle=":", color="grey")
    hist.set_xlabel("latency (ms)")
    hist.set_ylabel("requests")
    hist.set_title("Histogram")
    cdf.set_xlabel("latency (ms)")
    cdf.set_ylabel("share of requests")
    cdf.set_xscale("log")
    cdf.set_title("Cumulative (dotted: p50, p90, p99)")
    _save(figure, path)


def throughput(timeline: Sequence[Mapping[str, Any]], path: Path) -> None:
    figure = Figure(figsize=(9, 3))
    ax = figure.add_subplot()
    seconds = [row["second"] for row in timeline]
    ax.bar(seconds, [row["ok"] for row in timeline], width=0.9, color="#228833", label="ok")
    ax.bar(
        seconds, [row["errors"] for row in timeline], width=0.9, bottom=[row["ok"] for row in timeline],
        color="#cc3311", label="errors",
    )  # fmt: skip
    ax.set_xlabel("scheduled send time (s)")
    ax.set_ylabel("requests")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Requests per second (by scheduled second)")
    _save(figure, path)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return "—" if value is None else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}img{max-width:100%}"
)


def render_html(summary: Mapping[str, Any]) -> str:
    plan, latency, lag = summary["plan"], summary["latency"], summary["send_lag"]
    overview = _table(
        ["url", "target rps", "duration s", "requests", "ok", "errors", "throughput rps", "p50 ms", "p90 ms",
         "p99 ms", "max ms", "send lag p99 ms"],
        [[plan["url"], plan["rps"], plan["duration_s"], summary["requests"], summary["ok"], summary["errors"],
          summary["throughput_rps"], latency["p50_ms"], latency["p90_ms"], latency["p99_ms"], latency["max_ms"],
          lag["p99_ms"]]],
    )  # fmt: skip
    errors = summary["errors_by_kind"]
    error_table = _table(["kind", "count"], sorted(errors.items())) if errors else "<p>No errors.</p>"
    kinds = _table(["session kind", "sessions"], sorted(summary["sessions_by_kind"].items()))
    per_second = _table(
        ["second", "sent", "ok", "errors", "p50 ms", "p99 ms", "max ms"],
        [[r["second"], r["sent"], r["ok"], r["errors"], r["p50_ms"], r["p99_ms"], r["max_ms"]]
         for r in summary["timeline"]],
    )  # fmt: skip
    pictures = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in PICTURES)
    note = " (interrupted)" if summary.get("interrupted") else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kefu load test</title>'
        f"<style>{_STYLE}</style></head><body><h1>kefu load test{note}</h1>"
        f"<p>Open loop, {html.escape(plan['arrival'])} arrivals, sessions {html.escape(','.join(plan['sessions']))}, "
        f"seed {plan['seed']}. Latency is measured from each request's scheduled send time; percentiles are over "
        f"requests answered with a 2xx.</p>{overview}<h2>Errors</h2>{error_table}<h2>Sessions</h2>{kinds}"
        f"<h2>Pictures</h2>{pictures}<h2>Per second</h2>{per_second}</body></html>"
    )


def write_report(folder: Path, summary: Mapping[str, Any], samples: Sequence[Sample]) -> Path:
    """Write ``index.html``, its pictures and ``result.json`` into ``folder``; returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    timeline = summary["timeline"]
    latency_over_time(samples, timeline, folder / PICTURES[0])
    latency_distribution(samples, folder / PICTURES[1])
    throughput(timeline, folder / PICTURES[2])
    (folder / "result.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    page = folder / "index.html"
    page.write_text(render_html(summary), encoding="utf-8")
    return page
