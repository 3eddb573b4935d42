"""`soupgan upsample`, `evaluate` and `demo` as a user runs them: real files in and out, exit codes, one-line errors."""
import json

import nibabel as nib
import numpy as np
import pytest

from model.weights.model_source import default_generator_path, sha256_of
from pipeline.io.dicom_io import read_dicom_series
from pipeline.method.geometry import upsampled_affine
from tests.conftest import phantom
from tests.dicom_factory import write_series
from tests.test_cli import run_cli, soupgan


@pytest.fixture(scope="module")
def thick_ct(tmp_path_factory):
    """A synthetic thick-slice CT series in HU (5 mm slices, oblique-free), written as real DICOM files."""
    folder = str(tmp_path_factory.mktemp("ct") / "series")
    write_series(folder, phantom((40, 36, 8)) * 1.2 - 1000.0, slice_step=5.0)
    return folder


@pytest.mark.slow
def test_dicom_in_nifti_and_dicom_out_with_exact_geometry_and_hu(tmp_path, thick_ct):
    source = read_dicom_series(thick_ct)
    nifti, series, preview = tmp_path / "thin.nii.gz", tmp_path / "thin_series", tmp_path / "preview.png"
    result = soupgan("upsample", thick_ct, nifti, "--scale", "2.5", "--preview", preview)
    assert result.returncode == 0, result.stderr
    image = nib.load(nifti)
    assert image.shape == (40, 36, 18)  # (8 - 1)·2.5 + 1 thin slices
    expected = upsampled_affine(source.affine, 2, 2.5, "thin-to-thin")
    np.testing.assert_allclose(image.affine, expected, atol=1e-3)
    data = image.get_fdata()
    assert data.min() < -900  # Hounsfield units
    assert np.abs(data[..., ::5] - source.data[..., ::2]).mean() < 30  # thin slice 5k sits on thick slice 2k
    assert preview.stat().st_size > 10_000
    assert thick_ct not in result.stdout + result.stderr  # logs carry the hashed id, not the path

    result = soupgan("upsample", thick_ct, series, "--target-spacing", "1.25", "--criterion", "thin-to-thick")
    assert result.returncode == 0, result.stderr
    back = read_dicom_series(str(series))
    np.testing.assert_allclose(back.affine, upsampled_affine(source.affine, 2, 4, "thin-to-thick"), atol=1e-3)
    assert back.shape == (40, 36, 32) and back.modality == "CT" and back.data.min() < -900
    info = json.loads(soupgan("info", series, "--json").stdout)
    assert info["spacing_mm"][2] == pytest.approx(1.25)


def test_labels_follow_the_image_grid(tmp_path):
    labels = np.zeros((20, 20, 6), np.float32)
    labels[5:15, 5:15, 1:5] = 3
    nib.save(nib.Nifti1Image(labels, np.diag([1.0, 1.0, 4.0, 1.0])), tmp_path / "seg.nii.gz")
    result = soupgan("upsample", tmp_path / "seg.nii.gz", tmp_path / "seg_thin.nii.gz", "--scale", "4", "--labels")
    assert result.returncode == 0, result.stderr
    out = nib.load(tmp_path / "seg_thin.nii.gz")
    assert out.shape == (20, 20, 21) and set(np.unique(out.get_fdata())) == {0.0, 3.0}
    np.testing.assert_allclose(out.affine[2, 2], 1.0)


@pytest.mark.slow
def test_bad_requests_exit_2_with_one_line(tmp_path, thick_ct, anatomical_path, capsys):
    """Three cases through the console script (refused before TensorFlow loads, after the model loads, and in
    `evaluate` after both), where nothing else may reach stderr; the rest through its `main` in this process,
    the same code from the arguments to the exit code and the error line."""
    (tmp_path / "exists.nii.gz").write_bytes(b"x")
    (tmp_path / "junk.nii.gz").write_bytes(b"junk")
    console = {
        ("upsample", tmp_path / "junk.nii.gz", tmp_path / "o.nii.gz", "--scale", "2"): "not a NIfTI",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "7"): "outside the model's range [2, 6]",
        ("evaluate", anatomical_path, "--axis", "1", "--scales", "2,3", "--adapt", "2", "--out", tmp_path / "e"):
            "x3: --adapt: 14 slices are too few to adapt to (at least 16",
    }
    for args, reason in console.items():
        result = soupgan(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and reason in lines[0], (args, result.stderr)
        assert lines[0].startswith(f"soupgan {args[0]}: error: ")
    cases = {
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "1.5"): "outside the model's range [2, 6]",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--target-spacing", "0.5"): "scale 10 is outside",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "2", "--axis", "3"): "not a volume axis",
        ("upsample", thick_ct, tmp_path / "exists.nii.gz", "--scale", "2"): "exists; pass --force",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "2", "--model", tmp_path): "not a training run",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "2", "--adapt", "-1"): "must be >= 0",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "2", "--tile", "64,0,8"):
            "--tile 64,0,8: expected auto or three positive integers D,H,W",
        ("upsample", thick_ct, tmp_path / "o.nii.gz", "--scale", "2", "--adapt", "5", "--labels"): "not with --labels",
        ("evaluate", tmp_path / "missing.nii.gz"): "no such file",
        ("evaluate", thick_ct, "--adapt", "-2"): "--adapt -2: the number of steps must be >= 0",
        ("evaluate", anatomical_path, "--baseline", tmp_path / "junk.nii.gz", "--out", tmp_path / "e"):
            f"--baseline: {tmp_path / 'junk.nii.gz'}: not a training run folder or a generator .keras file",
    }
    for args, reason in cases.items():
        code, stderr = run_cli(args, capsys)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and reason in lines[0], (args, stderr)
    assert not (tmp_path / "o.nii.gz").exists() and (tmp_path / "exists.nii.gz").read_bytes() == b"x"
    assert not (tmp_path / "e").exists()  # refused before any scale was scored


@pytest.mark.slow
def test_evaluate_writes_a_table_json_and_figures(tmp_path, anatomical_path):
    result = soupgan("evaluate", anatomical_path, "--scales", "2,4", "--baseline", "shipped",
                     "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    rows = {(row["scale"], row["method"]): row for row in metrics["rows"]}
    # the shipped generator refines the flow-guided interpolation, which gets a row of its own
    methods = ("tricubic", "flow-guided", "soupgan")
    assert set(rows) == {(scale, method) for scale in (2, 4) for method in (*methods, "baseline")}
    # --baseline shipped is the same generator as the default --model: the same numbers, and its file's sha256
    assert all(rows[(scale, "baseline")]["psnr"] == rows[(scale, "soupgan")]["psnr"] for scale in (2, 4))
    assert metrics["baseline"] == {"model": "shipped", "sha256": sha256_of(default_generator_path("thin-to-thin"))}
    assert rows[(2, "tricubic")]["psnr"] > rows[(4, "tricubic")]["psnr"] > 15  # thicker slices, worse
    for scale in (2, 4):  # on this real scan each step adds: flow over the spline, the network over the flow
        psnr = {method: rows[(scale, method)]["psnr"] for method in methods}
        assert psnr["soupgan"] > psnr["flow-guided"] > psnr["tricubic"], psnr
    assert all(0 < row["ssim"] <= 1 and row["mvoxel_per_s"] > 0 for row in rows.values())
    # detail per slice phase: the measured slices (phase 0) are kept as measured, so exactly as sharp as the truth;
    # the network's generated slices follow the truth's detail more closely than the spline's do
    for row in rows.values():
        assert len(row["sharpness_by_phase"]) == row["scale"] and row["sharpness_by_phase"][0] == pytest.approx(1, abs=1e-3)
        assert row["sharpness_spread"] >= 1 - row["sharpness_worst"] - 1e-3 and -1 <= row["laplacian_correlation"] <= 1
    for scale in (2, 4):
        assert rows[(scale, "soupgan")]["laplacian_correlation"] > rows[(scale, "tricubic")]["laplacian_correlation"]
    assert (tmp_path / "eval" / "metrics.png").stat().st_size > 10_000
    assert (tmp_path / "eval" / "comparison.png").stat().st_size > 10_000
    assert "PSNR dB" in result.stdout and "banding" in result.stdout


@pytest.mark.slow
def test_evaluate_adapt_scores_the_adapted_generator_beside_the_shipped_one(tmp_path, anatomical_path):
    """Degraded along its 41-voxel axis, the scan keeps 21 slices at x2: enough to adapt to (two steps here)."""
    result = soupgan("evaluate", anatomical_path, "--axis", "1", "--scales", "2", "--adapt", "2",
                     "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in json.loads((tmp_path / "eval" / "metrics.json").read_text())["rows"]}
    assert set(rows) == {"tricubic", "flow-guided", "soupgan", "soupgan+adapt"}
    assert rows["soupgan+adapt"]["psnr"] != rows["soupgan"]["psnr"]  # two steps moved the generator
    assert abs(rows["soupgan+adapt"]["psnr"] - rows["soupgan"]["psnr"]) < 1.0


def test_demo_super_resolves_the_builtin_scan(tmp_path):
    result = soupgan("demo", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["thick_shape"] == [33, 41, 7] and scores["thin_shape"] == [33, 41, 25]
    assert scores["soupgan"]["psnr"] > scores["tricubic"]["psnr"]
    for name in ("thick_input.nii.gz", "tricubic.nii.gz", "soupgan.nii.gz", "preview.png"):
        assert (tmp_path / "demo" / name).exists()
    assert nib.load(tmp_path / "demo" / "soupgan.nii.gz").shape == (33, 41, 25)
    again = soupgan("demo", "--out", tmp_path / "demo")  # an earlier demo's files are replaced only with --force
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1].endswith(
        "thick_input.nii.gz exists; pass --force to replace it")


@pytest.mark.slow
def test_demo_full_runs_shards_train_upsample_export_evaluate(tmp_path):
    result = soupgan("demo", "--full", "--out", tmp_path / "full", timeout=900)  # 105 s on a 2-vCPU AVX2 machine
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "full" / "shards" / "manifest.json").exists()
    assert (tmp_path / "full" / "run" / "best_generator.keras").exists()
    assert (tmp_path / "full" / "export" / "models.config").exists()
    assert (tmp_path / "full" / "export" / "soupgan_thin_to_thin_x4" / "1" / "saved_model.pb").exists()
    rows = json.loads((tmp_path / "full" / "evaluation" / "metrics.json").read_text())["rows"]
    assert {row["scale"] for row in rows} == {2, 3, 4}
    assert {row["method"] for row in rows} == {"tricubic", "flow-guided", "soupgan"}  # flow-guided shards: flow input
