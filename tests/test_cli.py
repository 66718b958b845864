"""The ``nnjpeg-cuda`` command line: ``compress`` and ``tables`` (in-process through ``cli.main``, once as a
subprocess). Oracles: libjpeg through Pillow (decoded images, quantization tables) and scikit-image's PSNR.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import nnjpeg_cuda
from nnjpeg_cuda import tables
from nnjpeg_cuda.cli import main


@pytest.fixture()
def photo_dir(tmp_path, photos):
    """A folder of real photos in three formats, plus a gray and an RGBA image."""
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photos["astronaut"][::2, ::2]).save(folder / "astronaut.jpg", quality=95)
    Image.fromarray(photos["chelsea"]).save(folder / "chelsea.png")
    Image.fromarray(photos["coffee"][:200, :300]).save(folder / "coffee.webp", lossless=True)
    Image.fromarray(data.camera()[::4, ::4]).save(folder / "camera.bmp")
    rgba = np.dstack([photos["coffee"][:64, :96], np.linspace(0, 255, 64 * 96).reshape(64, 96).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "logo.png")
    return folder


def _read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)


def _libjpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0)
    buf.seek(0)
    return _read(buf)


def test_compress_folder(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compress", str(photo_dir), "-q", "40", "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    names = ["astronaut", "camera", "chelsea", "coffee", "logo"]
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.png" for n in names]
    for name in names:
        source = next(photo_dir.glob(f"{name}.*"))
        original, result = _read(source), _read(out / f"{name}.png")
        assert result.shape == original.shape and result.dtype == np.uint8
        pixels = original[..., :3] if original.ndim == 3 else original
        decoded = result[..., :3] if result.ndim == 3 else result
        if name == "logo":
            np.testing.assert_array_equal(result[..., 3], original[..., 3])  # alpha kept as it was
        if pixels.ndim == 3:  # RGB: close to what libjpeg decodes at the same quality
            assert peak_signal_noise_ratio(_libjpeg(pixels, 40), decoded) > 40
        else:
            expected = nnjpeg_cuda.roundtrip(torch.from_numpy(pixels)[None], quality=40)[0].numpy()
            np.testing.assert_array_equal(decoded, expected)
        # The PSNR it prints is scikit-image's.
        printed = re.search(rf"{re.escape(str(source))} -> .*PSNR ([\d.]+) dB", stdout)
        assert printed, stdout
        assert float(printed.group(1)) == pytest.approx(peak_signal_noise_ratio(pixels, decoded), abs=0.01)
    assert f"compressed 5 of 5 images into {out}" in stdout


def test_compress_levels_and_comparison_picture(photo_dir, tmp_path):
    out = tmp_path / "out"
    src = photo_dir / "chelsea.png"
    assert main(["compress", str(src), "-q", "90", "10", "--compare", "-o", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["chelsea_compare.png", "chelsea_q10.png", "chelsea_q90.png"]
    original, q90, q10 = _read(src), _read(out / "chelsea_q90.png"), _read(out / "chelsea_q10.png")
    # Lower quality loses more: the same ordering libjpeg gives.
    assert peak_signal_noise_ratio(original, q90) > peak_signal_noise_ratio(original, q10) + 5
    assert peak_signal_noise_ratio(_libjpeg(original, 10), q10) > 35
    picture = _read(out / "chelsea_compare.png")
    h, w = original.shape[:2]
    assert picture.shape[1] > 3 * w and picture.shape[0] > h  # three panels under a label strip
    np.testing.assert_array_equal(picture[-h:, :w], original)  # first panel: the original
    np.testing.assert_array_equal(picture[-h:, -w:], q10)  # last panel: the lowest quality


def test_compress_small_image_is_enlarged_in_comparison(tmp_path, photos):
    tiny = photos["astronaut"][::16, ::16]  # 32x32, like CIFAR-10
    Image.fromarray(tiny).save(tmp_path / "tiny.png")
    assert main(["compress", str(tmp_path / "tiny.png"), "--compare", "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert _read(tmp_path / "out" / "tiny.png").shape == (32, 32, 3)
    picture = _read(tmp_path / "out" / "tiny_compare.png")
    assert picture.shape[0] >= 128 and picture.shape[1] >= 2 * 128
    panel = picture[-128:, :128]
    np.testing.assert_array_equal(panel[::4, ::4], tiny)  # nearest-neighbour x4


def test_compress_table_preset_and_file(photo_dir, tmp_path):
    table = torch.full((2, 8, 8), 24.0)
    table[:, :2, :2] = 4
    table_file = tmp_path / "table.json"
    table_file.write_text(json.dumps({"table": table.tolist()}))
    src = photo_dir / "astronaut.jpg"
    for spec, expected_table in [(str(table_file), table), ("standard", "standard")]:
        out = tmp_path / f"out_{len(str(spec))}"
        assert main(["compress", str(src), "-q", "50", "-t", spec, "--subsampling", "4:2:0", "-o", str(out),
                     "--quiet"]) == 0
        expected = nnjpeg_cuda.roundtrip(_read(src), quality=50, table=expected_table, subsampling="4:2:0",
                                         layout="HWC")
        np.testing.assert_array_equal(_read(out / "astronaut.png"), expected)


def test_compress_unreadable_image_exit_1(photo_dir, tmp_path, capsys):
    (photo_dir / "broken.png").write_text("not a PNG")
    out = tmp_path / "out"
    assert main(["compress", str(photo_dir), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert "cannot read image" in captured.err and "broken.png" in captured.err
    assert "1 image(s) could not be read" in captured.err
    assert len(list(out.glob("*.png"))) == 5  # the readable ones are done
    assert "compressed 5 of 6 images" in captured.out


@pytest.mark.parametrize("make_args,message", [
    (lambda d, t: ["compress", str(t / "missing.jpg"), "-o", str(t / "o")], "no such file or folder"),
    (lambda d, t: ["compress", str(t / "empty"), "-o", str(t / "o")], "no images found in folder"),
    (lambda d, t: ["compress", str(d), "-t", "no-such-table", "-o", str(t / "o")], "unknown table 'no-such-table'"),
    (lambda d, t: ["compress", str(d / "chelsea.png"), str(t / "dup" / "chelsea.jpg"), "-o", str(t / "o")],
     "would both be written"),
    (lambda d, t: ["tables", "no-such-table"], "unknown table"),
    (lambda d, t: ["tables", str(t / "bad.json")], "cannot read table file"),
    (lambda d, t: ["tables", "--save", str(t / "x.json")], "use it with --design"),
])
def test_errors_exit_2_with_message(photo_dir, tmp_path, capsys, make_args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "dup").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "dup" / "chelsea.jpg")
    (tmp_path / "bad.json").write_text('{"table": [1, 2, 3]}')
    assert main(make_args(photo_dir, tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written


@pytest.mark.parametrize("args", [["compress", "x.png", "-q", "0"], ["compress", "x.png", "-q", "high"],
                                  ["tables", "-q", "101"], ["compress"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage: nnjpeg-cuda" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_compress_device_cuda_without_gpu(photo_dir, tmp_path, capsys):
    assert main(["compress", str(photo_dir / "chelsea.png"), "--device", "cuda", "-o", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["compress"], ["tables"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: nnjpeg-cuda" in capsys.readouterr().out


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_tables_json_matches_libjpeg(quality, capsys):
    assert main(["tables", "standard", "-q", str(quality), "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    libjpeg = Image.open(buf).quantization  # the tables libjpeg wrote, natural order
    assert entry["luma"] == np.array(libjpeg[0]).reshape(8, 8).tolist()
    assert entry["chroma"] == np.array(libjpeg[1]).reshape(8, 8).tolist()


def test_tables_text_list_and_plot(tmp_path, capsys):
    assert main(["tables", "--list"]) == 0
    assert capsys.readouterr().out.split() == tables.presets()
    plot = tmp_path / "plots" / "tables.png"
    names = tables.presets()
    assert main(["tables", *names, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    for name in names:  # each table printed as 16 aligned rows of 8 numbers (the base table, no -q)
        block = text.split(f"{name}: base table")[1].split("\n\n")[0]
        rows = [[float(v) for v in line.split()] for line in block.splitlines() if line.strip()[:1].isdigit()]
        np.testing.assert_array_equal(np.array(rows).reshape(2, 8, 8), tables.get_base(name).numpy())
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width > 400 and im.height > 300 * len(names) * 0.8


def test_tables_design_save_and_reuse(photo_dir, tmp_path, capsys):
    if not hasattr(tables, "design"):
        pytest.skip("tables.design is not available in this version")
    saved = tmp_path / "designed.json"
    assert main(["tables", "--design", "deepn", "--images", str(photo_dir), "--json", "--save", str(saved)]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    expected = tables.design(tables.analyze([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
                                             [None] for p in sorted(photo_dir.iterdir())]), method="deepn")
    assert np.array([entry["luma"], entry["chroma"]]).tolist() == expected.tolist()
    assert main(["tables", str(saved), "--json"]) == 0  # the saved file is a TABLE argument
    assert json.loads(capsys.readouterr().out)[0]["luma"] == entry["luma"]


@pytest.mark.slow
def test_subprocess_entry_point(photo_dir, tmp_path):
    """``python -m nnjpeg_cuda`` runs the same CLI and its exit code reaches the shell (one image unreadable: 1)."""
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "nnjpeg_cuda", "compress", str(photo_dir / "chelsea.png"),
                           str(tmp_path / "broken.jpg"), "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "broken.jpg" in proc.stderr and "compressed 1 of 2" in proc.stdout
    np.testing.assert_array_equal(_read(out / "chelsea.png"),
                                  nnjpeg_cuda.roundtrip(_read(photo_dir / "chelsea.png"), quality=50, layout="HWC"))


def test_compress_recursive_keeps_sub_folders(photo_dir, tmp_path, capsys):
    sub = photo_dir / "more" / "deeper"
    sub.mkdir(parents=True)
    (photo_dir / "chelsea.png").rename(sub / "chelsea.png")
    out = tmp_path / "out"
    assert main(["compress", str(photo_dir), "-o", str(out), "--quiet"]) == 0  # top level only
    assert not (out / "more").exists() and len(list(out.glob("*.png"))) == 4
    assert main(["compress", str(photo_dir), "-r", "-o", str(out), "--quiet"]) == 0
    assert (out / "more" / "deeper" / "chelsea.png").is_file()
    (tmp_path / "only_sub").mkdir()
    (tmp_path / "only_sub" / "inner").mkdir()
    (sub / "chelsea.png").rename(tmp_path / "only_sub" / "inner" / "chelsea.png")
    assert main(["compress", str(tmp_path / "only_sub"), "-o", str(out)]) == 2
    assert "use --recursive" in capsys.readouterr().err


def test_tables_design_from_npz(photos, tmp_path, capsys):
    if not hasattr(tables, "design"):
        pytest.skip("tables.design is not available in this version")
    x = np.stack([im[:64, :64] for im in photos.values()])  # (N, H, W, 3) uint8, like the CIFAR-10 files
    np.savez(tmp_path / "images.npz", x=x, y=np.arange(len(x)))
    assert main(["tables", "--design", "two_band", "--images", str(tmp_path / "images.npz"), "--limit", "2",
                 "-q", "50", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    designed = tables.design(tables.analyze(torch.from_numpy(x[:2]).permute(0, 3, 1, 2)), method="two_band")
    assert [entry["luma"], entry["chroma"]] == tables.scale(designed, 50).tolist()
    np.save(tmp_path / "gray.npy", x[..., 0])
    assert main(["tables", "--design", "deepn", "--images", str(tmp_path / "gray.npy")]) == 2
    assert "(N, H, W, 3)" in capsys.readouterr().err


def test_compress_16_bit_gray_is_scaled_not_clipped(tmp_path):
    from skimage import data

    gray8 = data.camera()[::4, ::4]
    Image.fromarray(gray8.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit PNG, same picture
    Image.fromarray(gray8).save(tmp_path / "flat.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert main(["compress", str(tmp_path / "deep.png"), str(tmp_path / "flat.png"), "-o", str(tmp_path / "o"),
                 "--quiet"]) == 0
    np.testing.assert_array_equal(_read(tmp_path / "o" / "deep.png"), _read(tmp_path / "o" / "flat.png"))


@pytest.mark.cuda
def test_compress_on_cuda_matches_torch_cuda(photo_dir, tmp_path):
    if not nnjpeg_cuda.cuda_built():
        pytest.skip("the CUDA kernels are not built")
    src = photo_dir / "chelsea.png"
    assert main(["compress", str(src), "--device", "cuda", "-q", "30", "-o", str(tmp_path), "--quiet"]) == 0
    expected = nnjpeg_cuda.roundtrip(torch.from_numpy(_read(src)).cuda(), quality=30, layout="HWC").cpu().numpy()
    np.testing.assert_array_equal(_read(tmp_path / "chelsea.png"), expected)
