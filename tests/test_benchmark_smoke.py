"""Smoke test of the throughput benchmark: `benchmarks/throughput.py --quick` runs and writes complete JSON."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "throughput.py")

pytest.importorskip("skimage", reason="the benchmark's workloads are scikit-image photos (bench extra)")
pytest.importorskip("tqdm", reason="the benchmark shows progress with tqdm (bench extra)")

pytestmark = pytest.mark.slow  # ~15-30 s on 2 busy cores

ROW_FIELDS = {"workload", "dtype", "contestant", "status", "images", "height", "width"}
OK_FIELDS = {"seconds", "spread", "images_per_s", "mpix_per_s", "fraction_of_limit", "runs"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    path, plot = out / "quick.json", out / "quick.png"
    # Only W2 (64 CIFAR-sized images): every contestant, our kernel, the reference and the skips, in seconds.
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--workloads", "W2",
                           "--json", str(path), "--plot", str(plot)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(path.read_text()), proc.stdout, plot


def test_json_has_machine_versions_and_bandwidth(quick_run):
    data, _, _ = quick_run
    assert data["quick"] is True and data["quality"] == 75
    assert data["copy_bandwidth_gb_per_s"] > 0
    assert {"cpu", "cores"} <= set(data["machine"])
    assert data["versions"]["torch"] and data["versions"]["nnjpeg_cuda"]
    assert "load average" in data["load_before"] or data["load_before"] == "unknown"


def test_rows_cover_every_case_with_consistent_numbers(quick_run):
    data, _, _ = quick_run
    rows = data["results"]
    assert {r["dtype"] for r in rows} == {"float32", "uint8"} and {r["workload"] for r in rows} == {"W2"}
    for r in rows:
        assert ROW_FIELDS <= set(r), r
        if r["status"] == "ok":
            assert OK_FIELDS <= set(r), r
            # images/s and MPixel/s describe the same measurement
            assert r["mpix_per_s"] == pytest.approx(r["images_per_s"] * r["height"] * r["width"] / 1e6)
            assert r["images_per_s"] == pytest.approx(r["images"] / r["seconds"])
            assert 0 < r["fraction_of_limit"]
        else:
            assert r["status"] == "skipped" and r["reason"], r
    ours = [r for r in rows if r["contestant"] == "ours fwd"]
    assert len(ours) == 2 and all(r["status"] == "ok" and r["ratio_to_ours"] == pytest.approx(1.0) for r in ours)
    # a float-only contestant is skipped, with its reason, on uint8
    float_only = [r for r in rows if r["contestant"].startswith("ours fwd+bwd") and r["dtype"] == "uint8"]
    assert float_only and all(r["status"] == "skipped" and "float32" in r["reason"] for r in float_only)


def test_table_targets_and_chart(quick_run):
    data, stdout, plot = quick_run
    assert "| workload | dtype | contestant |" in stdout and "ours fwd" in stdout
    assert any(t["target"].startswith("W2 float32: ours fwd / best OpenCV") for t in data["targets"]) or \
        not any(r["contestant"].startswith("OpenCV") and r["status"] == "ok" for r in data["results"])
    assert plot.exists() and plot.stat().st_size > 1000
