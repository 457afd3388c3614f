"""The bench's chart and report, drawn from results dicts shaped like the ones `make bench` writes.

Only the rendering is tested here; the measurements need the sandbox and are never asserted.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fleet.proof import bench, bench_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def timings(count: int) -> dict[str, dict]:
    return {f"measurement {i}": bench._summary([float(i), i + 0.5, i + 2.0]) for i in range(count)}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG always has first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_chart_is_a_real_png_with_one_row_per_timing(tmp_path):
    few = bench_chart.write_chart(timings(2), tmp_path / "few.png")
    many = bench_chart.write_chart(timings(12), tmp_path / "charts" / "many.png")
    assert few == tmp_path / "few.png" and many.parent.is_dir()
    assert few.stat().st_size > 5_000
    few_width, few_height = png_size(few)
    many_width, many_height = png_size(many)
    assert few_width == many_width == 1000  # 10 inches at 100 dpi
    assert many_height > few_height  # the figure grows with the number of rows


def test_a_chart_of_nothing_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no timings"):
        bench_chart.write_chart({}, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def throughput_row(achieved: float, p50: float | None) -> dict:
    return {"url": "https://127.0.0.1:8443", "offered_rate": 300, "achieved_rate": achieved,
            "served_rate": achieved - 1, "sent": 4500, "failed": 12, "dropped": 3,
            "p50_ms": p50, "p95_ms": 40.5, "p99_ms": 80.25, "max_ms": 120.0}


def test_results_md_has_the_timing_table_the_throughput_table_and_the_deploy_line():
    doc = {"results": {"fab deploy, code change, 4 app hosts": bench._summary([41.5])},
           "throughput": {"through the load balancer": throughput_row(299.9, 12.5),
                          "one gunicorn, direct (app1)": throughput_row(300.0, None)},
           "deploy_under_load": {"rate": 20, "app_hosts": 2, "release": "r2", "deploy_ok": True,
                                 "failure": None, "sent": 812, "failed": 0, "dropped": 0,
                                 "by_phase": []}}
    lines = bench.document_markdown(doc).splitlines()
    assert "| fab deploy, code change, 4 app hosts | 41.5 | 41.5 | 41.5 | 1 |" in lines
    header = next(line for line in lines if line.startswith("| target |"))
    assert header.count("|") == 11
    assert "| through the load balancer | 300 | 299.9 | 298.9 | 12 | 3 | 12.5 | 40.5 | 80.25 " \
           "| 120 |" in lines
    assert "| one gunicorn, direct (app1) | 300 | 300 | 299 | 12 | 3 | - | 40.5 | 80.25 " \
           "| 120 |" in lines
    assert ("Failed requests during a code-change deploy (20 req/s through the load balancer, "
            "2 app hosts): 0 of 812 sent, 0 dropped; the deploy succeeded.") in lines
    assert not any(line.startswith("Incomplete run") for line in lines)


def test_a_run_that_stopped_early_says_so_and_shows_only_what_it_measured():
    doc = {"results": {"fab provision, no changes (no-op)": bench._summary([30.0, 31.0])},
           "stopped_at": "throughput"}
    text = bench.document_markdown(doc)
    assert "| target |" not in text and "Failed requests" not in text
    assert 'Incomplete run: it stopped in "throughput"' in text


def test_write_results_keeps_the_timings_shape_and_draws_the_chart(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "OUT_DIR", tmp_path / "bench")
    doc = {"measured_at": "2026-01-01T00:00:00+00:00", "machine": {},
           "results": timings(3), "throughput": {"lb": throughput_row(250.0, 9.0)}}
    bench.write_results(doc)
    written = (tmp_path / "bench" / "results.json").read_text()
    assert '"measurement 1": {\n      "min": 1.0,\n      "median": 1.5' in written
    assert (tmp_path / "bench" / "results.md").read_text() == bench.document_markdown(doc)
    png_size(tmp_path / "bench" / "results.png")
