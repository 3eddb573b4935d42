"""The console script as a user runs it: real subprocesses, exit codes, one-line errors."""
import json
import os
import shutil
import subprocess
import sys
import traceback

import nibabel as nib
import numpy as np

from soupgan.cli import main
from tests.conftest import DICOMDIR_TESTS
from tests.dicom_factory import write_series

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def soupgan_command(*args):
    """The installed console script when there is one (as users run it), else `python -m soupgan`."""
    script = shutil.which("soupgan", path=os.path.dirname(sys.executable))
    return ([script] if script else [sys.executable, "-m", "soupgan"]) + [str(a) for a in args]


def soupgan(*args, timeout=120):
    """Run the console script; `timeout` only stops a hang (a slow CPU may take minutes for the long commands)."""
    return subprocess.run(soupgan_command(*args), capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def run_cli(argv, capsys) -> tuple[int | None, str]:
    """(exit code, stderr) of `soupgan.cli.main(argv)` run in this process, without the console script's seconds
    of interpreter and TensorFlow start-up; (None, the traceback) when an exception escaped. Only what Python
    writes to sys.stderr is seen: a check that nothing else reaches stderr needs the console script."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except Exception:  # a traceback is exactly what the callers exist to find
        return None, traceback.format_exc(limit=-3)
    return code, capsys.readouterr().err


def test_help_lists_subcommands():
    result = soupgan("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("demo", "info", "degrade", "shards", "train", "upsample", "evaluate"))


def test_packages_import():
    code = "import pipeline, model, serving, beam_jobs, soupgan; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_info_on_the_builtin_example():
    result = soupgan("info", "--example", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["shape"] == [33, 41, 25] and info["spacing_mm"] == [2.0, 2.0, 2.0]
    assert info["orientation"] == "LAS" and len(info["volume_id"]) == 16
    assert "anatomical" not in result.stdout  # no source path in the output


def test_info_on_a_real_dicom_series_shows_hounsfield_units():
    result = soupgan("info", os.path.join(DICOMDIR_TESTS, "98892001", "CT5N"), "--json")
    info = json.loads(result.stdout)
    assert info["modality"] == "CT" and info["shape"] == [16, 16, 5] and info["slice_axis"] == 2
    assert info["intensity_min_max"][0] < -800


def test_degrade_writes_thick_slices_with_true_geometry(tmp_path):
    out = tmp_path / "thick.nii.gz"
    result = soupgan("degrade", "--example", "-o", out, "--scale", "3", "--criterion", "thin-to-thick")
    assert result.returncode == 0, result.stderr
    image = nib.load(out)
    assert image.shape == (33, 41, 8)
    source = nib.load(os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii"))
    expected = source.affine.copy()
    expected[:3, 2] *= 3
    expected[:3, 3] += source.affine[:3, 2]  # first slab centred on thin slice 1
    np.testing.assert_allclose(image.affine, expected, atol=1e-5)


def _bad_inputs(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    nib.save(nib.Nifti1Image(np.random.default_rng(0).normal(size=(16, 16, 12)).astype(np.float32), np.eye(4)), tmp_path / "whole.nii.gz")
    (tmp_path / "cut.nii.gz").write_bytes((tmp_path / "whole.nii.gz").read_bytes()[:3000])
    nib.save(nib.Nifti1Image(np.zeros((9, 9), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((9, 9, 9, 2), np.float32), np.eye(4)), tmp_path / "fmri.nii.gz")
    nan = np.ones((9, 9, 9), np.float32)
    nan[4, 4, 4] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    write_series(str(tmp_path / "two" / "a"), np.zeros((8, 8, 3), np.float32))
    write_series(str(tmp_path / "two" / "b"), np.zeros((8, 8, 3), np.float32))
    paths = write_series(str(tmp_path / "gap"), np.zeros((8, 8, 6), np.float32))
    os.remove(paths[2])
    positions = [np.array([0.0, 0.0, z]) for z in (0, 2.5, 5.0, 8.5, 11.0)]
    write_series(str(tmp_path / "uneven"), np.zeros((8, 8, 5), np.float32), positions=positions)
    return {
        "empty.nii.gz": "empty file",
        "cut.nii.gz": "corrupt or truncated gzip",
        "flat.nii.gz": "expected a 3D volume",
        "fmri.nii.gz": "4D data",
        "nan.nii.gz": "NaN or infinite",
        "two": "holds 2 DICOM series",
        "gap": "slice(s) missing",
        "uneven": "uneven slice spacing",
        "missing.nii": "no such file",
    }


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    for name, reason in _bad_inputs(tmp_path).items():
        result = soupgan("info", tmp_path / name)
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and reason in lines[0] and lines[0].startswith("soupgan info: error:"), (name, result.stderr)
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2():
    assert soupgan("info").returncode == 2
    assert soupgan("degrade", "--example", "-o", "x.nii.gz", "--scale", "1").returncode == 2
    assert soupgan("nonsense").returncode == 2
