"""The HTML report: summary, errors, pictures (real PNG files), the per-second table, the JSON result."""

from __future__ import annotations

import json
from pathlib import Path

from kefu.loadtest.report import PICTURES, write_report
from kefu.loadtest.stats import Sample, summarize

PNG = b"\x89PNG\r\n\x1a\n"


def run_result() -> tuple[dict[str, object], list[Sample]]:
    samples = [Sample(i / 50, 0.01 + (i % 7) / 1000, 0.0005, 200, None) for i in range(150)]
    samples += [Sample(1.5, 10.0, 0.0, 0, "timeout"), Sample(2.5, 0.2, 0.0, 503, "http_503")]
    summary = summarize(samples, rps=50, duration_s=3, elapsed_s=3.2)
    plan = {"url": "http://127.0.0.1:8000", "rps": 50, "duration_s": 3, "arrival": "poisson",
            "sessions": ["zh", "en"], "seed": 0}  # fmt: skip
    return {"plan": plan, **summary, "sessions_by_kind": {"policy": 9, "order_status": 12}}, samples


def test_the_report_has_pictures_tables_and_the_json(tmp_path: Path) -> None:
    summary, samples = run_result()
    page = write_report(tmp_path / "out", summary, samples)
    html = page.read_text(encoding="utf-8")
    for name in PICTURES:
        picture = tmp_path / "out" / name
        assert picture.read_bytes().startswith(PNG) and picture.stat().st_size > 5000
        assert f'src="{name}"' in html
    assert "http_503" in html and "timeout" in html  # errors by kind
    assert "<td>152</td>" in html and "<td>150</td>" in html  # requests, ok
    assert html.count("<tr>") >= 3 + 2 + 2  # per-second rows, error kinds, session kinds
    assert json.loads((tmp_path / "out" / "result.json").read_text())["errors_by_kind"] == {"http_503": 1, "timeout": 1}


def test_a_run_without_answers_still_gets_a_report(tmp_path: Path) -> None:
    samples = [Sample(0.1 * i, 1.0, 0.0, 0, "connection") for i in range(5)]
    summary = {"plan": run_result()[0]["plan"], **summarize(samples, rps=10, duration_s=0.5, elapsed_s=0.6),
               "sessions_by_kind": {}}  # fmt: skip
    page = write_report(tmp_path, summary, samples)
    assert "connection" in page.read_text() and (tmp_path / PICTURES[1]).is_file()
