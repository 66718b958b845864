"""The throughput benchmark: `benchmarks/throughput.py --quick` runs and writes complete JSON (slow smoke
test), the Pillow / OpenCV peers code what their labels say (fast), and the targets pick the peers' best rows."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "throughput.py")

pytest.importorskip("skimage", reason="the benchmark's workloads are scikit-image photos (bench extra)")
pytest.importorskip("tqdm", reason="the benchmark shows progress with tqdm (bench extra)")

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

ROW_FIELDS = {"workload", "dtype", "contestant", "status", "images", "height", "width"}
OK_FIELDS = {"seconds", "spread", "images_per_s", "mpix_per_s", "fraction_of_limit", "runs", "cpu_per_wall"}


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


@pytest.mark.slow  # the smoke run: ~15-30 s on 2 busy cores
def test_json_has_machine_versions_and_bandwidth(quick_run):
    data, _, _ = quick_run
    assert data["quick"] is True and data["quality"] == 75
    assert data["copy_bandwidth_gb_per_s"] > 0
    assert {"cpu", "cores"} <= set(data["machine"])
    assert data["versions"]["torch"] and data["versions"]["nnjpeg_cuda"]
    assert "load average" in data["load_before"] or data["load_before"] == "unknown"


@pytest.mark.slow
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
            assert 0 <= r["cpu_per_wall"] < (os.cpu_count() or 1) + 1  # process CPU time / wall time
        else:
            assert r["status"] == "skipped" and r["reason"], r
    ours = [r for r in rows if r["contestant"] == "ours fwd"]
    assert len(ours) == 2 and all(r["status"] == "ok" and r["ratio_to_ours"] == pytest.approx(1.0) for r in ours)
    # a float-only contestant is skipped, with its reason, on uint8
    float_only = [r for r in rows if r["contestant"].startswith("ours fwd+bwd") and r["dtype"] == "uint8"]
    assert float_only and all(r["status"] == "skipped" and "float32" in r["reason"] for r in float_only)


@pytest.mark.slow
def test_table_targets_and_chart(quick_run):
    data, stdout, plot = quick_run
    assert "| workload | dtype | contestant |" in stdout and "ours fwd" in stdout
    if any(r["contestant"].startswith("OpenCV") and r["status"] == "ok" for r in data["results"]):
        for name in ("W2 float32 4:4:4: ours fwd / OpenCV's best 4:4:4 row",
                     "W2 uint8 4:4:4: ours fwd / OpenCV's best 4:4:4 row",
                     "W2 float32 4:2:0: ours fwd 4:2:0 / OpenCV's best 4:2:0 row",
                     "W2 uint8 4:2:0: ours fwd 4:2:0 / OpenCV's best 4:2:0 row"):
            assert any(t["target"].startswith(name) for t in data["targets"]), name
        assert "codec only" in stdout and "OpenCV best, any input" in stdout
    assert plot.exists() and plot.stat().st_size > 1000


@pytest.mark.slow
def test_ratio_pairs_are_timed_in_alternation(quick_run):
    data, _, _ = quick_run
    pairs = {(p["reference"], p["contestant"]): p for p in data["paired"]}
    assert set(pairs) == {("ours fwd", "ours fwd+bwd ste"), ("ours fwd", "ours multi K=5"),
                          ("ours fwd, out= (reused output)", "ours multi K=5, out= (reused output)")}
    for p in pairs.values():
        assert p["workload"] == "W2" and p["dtype"] == "float32"
        assert p["time_ratio"] == pytest.approx(p["seconds"][p["contestant"]] / p["seconds"][p["reference"]])
    ste = next(t for t in data["targets"] if t["target"] == "W2 float32: fwd+bwd (ste) speed / fwd speed")
    assert "alternating calls" in ste["measured"]


# --- the peers code what their labels say (fast) ---------------------------------------------------------


@pytest.fixture(scope="module")
def photos():
    from workloads import make_batch

    return make_batch("W1", quick=True)[:2]  # two 224x224 photo crops, uint8 NCHW


def _roundtrip_rows(peers, library, sub, batch, threads=1):
    codec = {"OpenCV": peers.opencv_chw_codec, "Pillow": peers.pillow_chw_codec}[library](sub)
    return peers.tensor_pass(codec, batch, threads)()


@pytest.mark.parametrize("sub", ["4:4:4", "4:2:0"])
def test_opencv_tensor_and_codec_only_rows_agree_and_keep_colours(photos, sub, monkeypatch):
    pytest.importorskip("cv2")
    import peers

    tensor_out = _roundtrip_rows(peers, "OpenCV", sub, photos)
    native = peers.native_pass(peers.opencv_bgr_codec(sub), peers.native_inputs(photos, "OpenCV"), 2)()
    native_rgb = np.stack([im[:, :, ::-1] for im in native]).transpose(0, 3, 1, 2)
    assert tensor_out.dtype == torch.uint8 and tensor_out.shape == photos.shape
    monkeypatch.setattr(peers, "CHUNK_PIXELS", 1)  # chunks of one image, over 2 threads: same pixels
    np.testing.assert_array_equal(_roundtrip_rows(peers, "OpenCV", sub, photos, threads=2).numpy(),
                                  tensor_out.numpy())
    np.testing.assert_array_equal(tensor_out.numpy(), native_rgb)  # same bytes, only the colour order differs
    # a swapped colour order would put the error at tens of levels; a JPEG at q75 stays near a few
    err = (tensor_out.float() - photos.float()).abs().mean(dim=(0, 2, 3))
    assert (err < 6).all(), err


@pytest.mark.parametrize("library", ["OpenCV", "Pillow"])
def test_float_rows_equal_uint8_rows_over_255(photos, library):
    pytest.importorskip({"OpenCV": "cv2", "Pillow": "PIL"}[library])
    import peers

    u8 = _roundtrip_rows(peers, library, "4:4:4", photos)
    f32 = _roundtrip_rows(peers, library, "4:4:4", photos.float() / 255, threads=2)
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32, u8.float() / 255, rtol=0, atol=1e-6)


def test_subsampling_is_what_the_label_says(photos):
    """OpenCV's and Pillow's libjpeg-turbo agree at the same subsampling and differ across subsamplings."""
    pytest.importorskip("cv2")
    pytest.importorskip("PIL")
    import peers

    out = {(lib, sub): _roundtrip_rows(peers, lib, sub, photos).float()
           for lib in ("OpenCV", "Pillow") for sub in ("4:4:4", "4:2:0")}
    for sub, other in (("4:4:4", "4:2:0"), ("4:2:0", "4:4:4")):
        same = (out["OpenCV", sub] - out["Pillow", sub]).abs().mean()
        cross = (out["OpenCV", sub] - out["Pillow", other]).abs().mean()
        assert same < 0.5 and cross > 4 * same, (sub, same, cross)


def test_split_map_keeps_order_over_threads():
    from concurrent.futures import ThreadPoolExecutor

    import peers

    with ThreadPoolExecutor(2) as pool:
        for n in (0, 1, 5, 8):
            for threads in (1, 2, 3):
                assert peers.split_map(lambda x: x * x, list(range(n)), pool, threads) == [x * x for x in range(n)]


def _row(contestant, dtype, mpix, library, sub="4:4:4", native=False, workload="W1"):
    return {"workload": workload, "dtype": dtype, "contestant": contestant, "status": "ok", "height": 1,
            "width": 1, "images": 1, "images_per_s": mpix * 1e6, "mpix_per_s": mpix, "library": library,
            "subsampling": sub, "native": native, "fraction_of_limit": 0.1}


def test_targets_use_the_best_peer_row_of_the_same_subsampling():
    from reporting import cpu_targets, peer_comparisons

    rows = [_row("ours fwd", "float32", 200, "ours"), _row("ours fwd", "uint8", 400, "ours"),
            _row("ours fwd 4:2:0", "float32", 70, "ours", "4:2:0"),
            _row("cv tensor", "float32", 30, "OpenCV"), _row("cv tensor", "uint8", 60, "OpenCV"),
            _row("cv native", "uint8", 160, "OpenCV", native=True),
            _row("cv 420 native", "uint8", 210, "OpenCV", "4:2:0", native=True),  # faster, other subsampling
            _row("pil native", "uint8", 50, "Pillow", native=True)]
    comp = {(c["subsampling"], c["dtype"]): c for c in peer_comparisons(rows)}
    f32 = comp["4:4:4", "float32"]
    assert f32["OpenCV_any"]["contestant"] == "cv native" and f32["OpenCV_any"]["ours_over_peer"] == pytest.approx(1.25)
    assert f32["OpenCV_tensor"]["contestant"] == "cv tensor" and f32["OpenCV_tensor"]["dtype"] == "float32"
    assert comp["4:4:4", "uint8"]["OpenCV_any"]["ours_over_peer"] == pytest.approx(2.5)
    assert comp["4:2:0", "float32"]["OpenCV_any"]["contestant"] == "cv 420 native"
    assert ("4:2:0", "uint8") not in comp  # no row of ours
    targets = cpu_targets(rows)
    f32_target = next(t for t in targets if t["target"].startswith("W1 float32 4:4:4: ours fwd / OpenCV's best"))
    assert "(cv native, uint8 input; a float32 user must convert)" in f32_target["target"]
    assert f32_target["measured"] == "1.25x" and f32_target["met"] is False  # goal 3x
    u8_target = next(t for t in targets if t["target"].startswith("W1 uint8 4:4:4: ours fwd / OpenCV's best"))
    assert u8_target["measured"] == "2.50x" and "must convert" not in u8_target["target"]
    f420 = next(t for t in targets if t["target"].startswith("W1 float32 4:2:0: ours fwd 4:2:0"))
    assert f420["measured"] == "0.33x"  # 70 / 210


def test_ratio_targets_use_the_alternating_pair_over_separate_rows():
    from reporting import cpu_targets

    rows = [_row("ours fwd", "float32", 200, "ours"), _row("ours fwd+bwd ste", "float32", 80, "ours"),
            _row("ours multi K=5", "float32", 60, "ours")]
    paired = [{"workload": "W1", "dtype": "float32", "reference": "ours fwd", "contestant": "ours fwd+bwd ste",
               "time_ratio": 1.8},
              {"workload": "W1", "dtype": "float32", "reference": "ours fwd", "contestant": "ours multi K=5",
               "time_ratio": 2.4}]
    by_name = {t["target"]: t for t in cpu_targets(rows, paired=paired)}
    ste = by_name["W1 float32: fwd+bwd (ste) speed / fwd speed"]
    assert ste["measured"] == "0.56x (alternating calls; separate rows: 0.40x)" and ste["met"] is True
    multi = by_name["W1 float32: multi K=5 time / one level"]
    assert multi["measured"] == "2.40x (alternating calls; separate rows: 3.33x)" and multi["met"] is True
    # without the pairs, the separate rows decide
    by_name = {t["target"]: t for t in cpu_targets(rows)}
    assert by_name["W1 float32: fwd+bwd (ste) speed / fwd speed"]["measured"] == "0.40x"
    assert by_name["W1 float32: multi K=5 time / one level"]["met"] is False


def test_the_multi_level_target_shows_the_memory_bound_ratio():
    from reporting import cpu_targets

    one = {**_row("ours fwd", "float32", 200, "ours"), "fraction_of_limit": 0.7, "bytes_per_image": 24}
    multi = {**_row("ours multi K=5", "float32", 70, "ours"), "fraction_of_limit": 0.74, "bytes_per_image": 72}
    target = next(t for t in cpu_targets([one, multi]) if t["target"] == "W1 float32: multi K=5 time / one level")
    # 200 / 70 = 2.86x; K = 5 moves 3x the bytes (float32 in once, out five times)
    assert target["measured"] == ("2.86x; of the memory-bound limit: one level 70%, K=5 74% "
                                  "(at equal fractions 3.00x)") and target["met"] is False


def test_gpu_targets_compare_like_with_like_and_list_skipped_peers():
    from reporting import gpu_targets

    rows = [{**_row("ours fwd", "float32", 9000, "ours"), "fraction_of_limit": 0.72},
            _row("ours fwd 4:2:0", "float32", 8000, "ours", "4:2:0"),
            _row("ours fwd 4:2:0", "uint8", 9000, "ours", "4:2:0"),
            _row("torchvision encode+decode (4:2:0)", "float32", 500, "torchvision", "4:2:0"),
            _row("torchvision encode+decode (4:2:0)", "uint8", 400, "torchvision", "4:2:0"),
            {"workload": "W1", "dtype": "float32", "contestant": "kornia fwd (4:2:0)", "status": "skipped",
             "reason": "kornia not installed (ModuleNotFoundError)"},
            {"workload": "W1", "dtype": "uint8", "contestant": "kornia fwd (4:2:0)", "status": "skipped",
             "reason": "takes float32 input"}]
    by_name = {t["target"]: t for t in gpu_targets(rows)}
    assert by_name["W1 float32: ours fwd, fraction of the memory-bound limit"]["met"] is True  # 72% >= 70%
    tv = by_name["W1 float32: ours fwd 4:2:0 / torchvision encode+decode (4:2:0)"]
    assert tv["measured"] == "16.00x" and tv["met"] is False  # 8000 / 500, goal 20x
    assert by_name["W1 uint8: ours fwd 4:2:0 / torchvision encode+decode (4:2:0)"]["met"] is True  # 22.5x
    kornia = by_name["W1 float32: ours fwd 4:2:0 / kornia fwd (4:2:0)"]
    assert kornia["measured"].startswith("not measured (kornia not installed") and kornia["met"] is False
    assert "W1 uint8: ours fwd 4:2:0 / kornia fwd (4:2:0)" not in by_name  # kornia never takes uint8
    # ours at its default 4:4:4 against the same peers (9000 / 500)
    assert by_name["W1 float32: ours fwd / torchvision encode+decode (4:2:0)"]["measured"] == "18.00x"


def test_a_ratio_just_short_of_its_goal_is_not_printed_as_the_goal():
    from reporting import cpu_targets, ratio_text

    assert ratio_text(0.4951, 0.5) == "0.495" and ratio_text(2.995, 3.0) == "2.995" and ratio_text(0.56, 0.5) == "0.56"
    assert ratio_text(0.5, 0.5) == "0.50" and ratio_text(2.5004, 2.5) == "2.5004"
    rows = [_row("ours fwd", "float32", 200, "ours"), _row("ours fwd+bwd ste", "float32", 200 / (1 / 0.4951), "ours")]
    ste = next(t for t in cpu_targets(rows) if t["target"] == "W1 float32: fwd+bwd (ste) speed / fwd speed")
    assert ste["measured"] == "0.495x" and ste["met"] is False


def test_time_alternating_times_each_function():
    from measure import time_alternating

    calls = []
    t = time_alternating({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, "cpu", rounds=4,
                         warmup=1)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    assert calls == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up, then alternating order


def test_a_gpu_run_refuses_a_build_without_cuda_kernels(monkeypatch, capsys):
    # Without the CUDA kernels "ours" on CUDA tensors would be the PyTorch reference, timed as if it were ours.
    import nnjpeg_cuda
    from throughput import parse_args

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(nnjpeg_cuda, "cuda_built", lambda: False)
    with pytest.raises(SystemExit) as exc:
        parse_args(["--device", "cuda", "--quick"])
    assert exc.value.code == 2 and "no CUDA kernels" in capsys.readouterr().err
