"""Summaries of a load test: percentiles over answered requests, errors by kind, throughput, timeline."""

from __future__ import annotations

import pytest

from kefu.loadtest.stats import Sample, error_kind, latency_summary, summarize, timeline


def ok(at: float, ms: float) -> Sample:
    return Sample(at, ms / 1000, 0.0, 200, None)


def failed(at: float, kind: str, status: int = 0) -> Sample:
    return Sample(at, 1.0, 0.0, status, kind)


def test_latency_summary_percentiles_in_milliseconds() -> None:
    summary = latency_summary([i / 1000 for i in range(1, 101)])  # 1 .. 100 ms
    assert summary["n"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p90_ms"] == pytest.approx(90.1)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == 100.0 and summary["mean_ms"] == 50.5
    assert latency_summary([])["p99_ms"] is None


def test_error_kinds() -> None:
    assert error_kind(200) is None and error_kind(204) is None
    assert error_kind(503) == "http_503" and error_kind(404) == "http_404"


def test_summary_counts_errors_by_kind_and_keeps_them_out_of_the_percentiles() -> None:
    samples = [ok(i * 0.1, 10.0) for i in range(18)]
    samples += [failed(0.5, "timeout"), failed(1.2, "http_503", 503), failed(1.3, "http_503", 503)]
    samples += [failed(1.9, "connection")]
    result = summarize(samples, rps=11.0, duration_s=2.0, elapsed_s=2.5)
    assert result["requests"] == 22 and result["ok"] == 18 and result["errors"] == 4
    assert result["errors_by_kind"] == {"connection": 1, "http_503": 2, "timeout": 1}
    assert result["latency"]["max_ms"] == 10.0  # the 1 s errors are not in the latency figures
    assert result["throughput_rps"] == pytest.approx(18 / 2.5)  # over the elapsed window
    assert result["offered_rps"] == 11.0


def test_timeline_buckets_by_scheduled_second() -> None:
    samples = [ok(0.1, 5), ok(0.9, 15), ok(1.5, 100), failed(1.6, "timeout"), ok(2.99, 7)]
    rows = timeline(samples, 3.0)
    assert [r["sent"] for r in rows] == [2, 2, 1]
    assert [r["ok"] for r in rows] == [2, 1, 1]
    assert [r["errors"] for r in rows] == [0, 1, 0]
    assert rows[0]["max_ms"] == 15.0 and rows[1]["p50_ms"] == 100.0
    assert timeline([], 2.5)[2] == {"second": 2, "sent": 0, "ok": 0, "errors": 0, "p50_ms": None,
                                     "p99_ms": None, "max_ms": None}  # fmt: skip
