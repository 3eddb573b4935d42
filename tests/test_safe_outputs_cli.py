"""The command line never costs a user data: outputs apart from the inputs, --force only over what soupgan wrote,
every output checked before compute, signals and kills leave nothing partial, folders readable by others,
outputs in the input's type, range and window, and one clear line for each bad request."""
import hashlib
import os
import signal
import stat
import subprocess
import tempfile
import time

import nibabel as nib
import numpy as np
import pydicom
import pytest

from model.weights.model_source import resolve_generator
from model.inference.super_resolve import super_resolve
from pipeline.io.staging import STAGING_PREFIX
from pipeline.io.volume_io import read_volume
from soupgan.cli import main
from tests.conftest import phantom
from tests.dicom_factory import write_series
from tests.read_only import read_only_folder
from tests.test_cli import ROOT, soupgan, soupgan_command


def run(capsys, *args) -> tuple[int, list[str]]:
    """One in-process command: (exit code, its stderr lines)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def tree_digest(path) -> str:
    """A digest of every file name and byte under `path`: equal digests, nothing lost or changed."""
    digest = hashlib.sha256()
    for root, folders, files in sorted(os.walk(path)):
        folders.sort()
        for name in sorted(files):
            digest.update(os.path.relpath(os.path.join(root, name), path).encode())
            with open(os.path.join(root, name), "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def staging_left(folder) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(STAGING_PREFIX)]


@pytest.fixture
def study(tmp_path, ct_series_dir):
    """s/study/ct (pydicom's real CT5N series) beside s/study/report.txt, as in the report that found the bug."""
    study = tmp_path / "s" / "study"
    study.mkdir(parents=True)
    subprocess.run(["cp", "-r", ct_series_dir, str(study / "ct")], check=True)
    (study / "report.txt").write_text("the radiologist's report")
    return study


def test_force_never_deletes_inputs_or_folders_it_did_not_write(capsys, study, anatomical_path, tmp_path):
    scan = tmp_path / "s" / "X.nii.gz"
    scan.write_bytes(nib.load(anatomical_path).to_bytes())
    before = tree_digest(tmp_path / "s")
    cases = {
        (study / "ct", study): "holds the input",
        (study / "ct", study / "ct"): "is the input",
        (study / "ct", study / "ct" / "thin"): "lies inside the input folder",
        (scan, scan): "is the input",
    }
    for (source, output), reason in cases.items():
        code, lines = run(capsys, "upsample", source, output, "--scale", "2", "--force")
        assert code == 2 and len(lines) == 1 and reason in lines[0], lines
    assert tree_digest(tmp_path / "s") == before

    code, _ = run(capsys, "upsample", study / "ct", tmp_path / "thin", "--scale", "2")
    assert code == 0 and (tmp_path / "thin" / ".soupgan-series.json").exists()
    code, lines = run(capsys, "upsample", study / "ct", tmp_path / "thin", "--scale", "3", "--force")
    assert code == 0 and len([n for n in os.listdir(tmp_path / "thin") if n.endswith(".dcm")]) == 13  # replaced
    (tmp_path / "thin" / "notes.txt").write_text("added by a user")
    code, lines = run(capsys, "upsample", study / "ct", tmp_path / "thin", "--scale", "2", "--force")
    assert code == 2 and "holds files soupgan did not write (e.g. notes.txt)" in lines[-1]
    assert (tmp_path / "thin" / "notes.txt").exists() and staging_left(tmp_path) == []


def test_unwritable_outputs_are_refused_before_any_compute(tmp_path, ct_series_dir):
    with read_only_folder(tmp_path / "ro") as folder:
        requests = [
            (os.path.join(folder, "thin.nii.gz"), []),
            (os.path.join(folder, "thin_series"), []),
            (str(tmp_path / "thin.nii.gz"), ["--preview", os.path.join(folder, "preview.png")]),
        ]
        for output, extra in requests:
            result = soupgan("upsample", ct_series_dir, output, "--scale", "2", *extra)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2 and len(lines) == 1, result.stderr
            assert "cannot write in" in lines[0] and ("Read-only file system" in lines[0] or "denied" in lines[0])
        assert os.listdir(folder) == []
    assert not (tmp_path / "thin.nii.gz").exists()  # the preview was checked before the output was written


def _labels_file(tmp_path) -> str:
    """A label map whose x6 series (355 slices of 96x96) takes long enough to write to be caught mid-write."""
    labels = np.zeros((96, 96, 60), np.uint8)
    labels[20:70, 25:80, 5:50] = 1
    labels[40:60, 40:60, 20:40] = 2
    path = str(tmp_path / "seg.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.diag([1.0, 1.0, 6.0, 1.0])), path)
    return path


def _start_and_catch_writing(tmp_path, output) -> subprocess.Popen:
    """Start `upsample --labels` into `output` and return once its staging folder holds some slices."""
    process = subprocess.Popen(soupgan_command("upsample", _labels_file(tmp_path), output, "--scale", "6", "--labels"),
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        for name in staging_left(tmp_path):
            written = os.path.join(tmp_path, name, "output")
            if os.path.isdir(written) and len(os.listdir(written)) >= 5:
                return process
        time.sleep(0.002)
    process.kill()
    pytest.fail(f"the series was not caught mid-write (exit {process.poll()}): {process.stderr.read()[-500:]}")


def test_sigterm_and_sigkill_mid_write_leave_nothing_partial(tmp_path):
    output = str(tmp_path / "thin_series")
    process = _start_and_catch_writing(tmp_path, output)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 143
    assert process.stderr.read().strip().splitlines()[-1] == "soupgan upsample: terminated"
    assert not os.path.exists(output) and staging_left(tmp_path) == []  # cleaned up on the way out

    process = _start_and_catch_writing(tmp_path, output)
    process.kill()
    assert process.wait(60) == -signal.SIGKILL
    assert not os.path.exists(output)  # the series never appears under its name half written
    assert len(staging_left(tmp_path)) == 1  # hidden, and owned by a process that is gone
    (tmp_path / "tiny.nii.gz").write_bytes(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), np.diag([1, 1, 3, 1.0])).to_bytes())
    result = soupgan("upsample", tmp_path / "tiny.nii.gz", tmp_path / "next.nii.gz", "--scale", "2", "--labels")
    assert result.returncode == 0, result.stderr
    assert staging_left(tmp_path) == []  # the next write into the folder removed it


def test_series_follow_the_umask_and_another_user_can_read_them(tmp_path, ct_series_dir):
    shared = tempfile.mkdtemp(prefix="soupgan-umask-")  # under /tmp, so another user can reach it
    try:
        os.chmod(shared, 0o755)
        output = os.path.join(shared, "thin_series")
        result = subprocess.run(soupgan_command("upsample", ct_series_dir, output, "--scale", "2"), capture_output=True,
                                text=True, cwd=ROOT, umask=0o022)
        assert result.returncode == 0, result.stderr
        files = sorted(os.path.join(output, name) for name in os.listdir(output))
        assert stat.S_IMODE(os.stat(output).st_mode) == 0o755
        assert {stat.S_IMODE(os.stat(path).st_mode) for path in files} == {0o644}
        if os.geteuid() == 0:  # read it as an unprivileged user, as a PACS sender would
            read = subprocess.run(["cat", *files], user="nobody", capture_output=True)
            assert read.returncode == 0, read.stderr
            assert len(read.stdout) == sum(os.path.getsize(path) for path in files)
    finally:
        subprocess.run(["rm", "-rf", shared], check=True)


def test_outputs_keep_the_input_type_range_and_window(capsys, tmp_path):
    head = (phantom((40, 36, 8)) / 4).astype(np.uint8)  # a uint8 MR: sharp edges make the spline overshoot
    nib.save(nib.Nifti1Image(head, np.diag([1.0, 1.0, 4.0, 1.0])), tmp_path / "mr.nii.gz")
    raw = super_resolve(read_volume(tmp_path / "mr.nii.gz"), resolve_generator(None, "thin-to-thin"), 4.0)
    assert raw.data.min() < -1  # what the network gives before the clip
    assert run(capsys, "upsample", tmp_path / "mr.nii.gz", tmp_path / "mr_thin.nii.gz", "--scale", "4")[0] == 0
    out = nib.load(tmp_path / "mr_thin.nii.gz")
    assert out.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(out.get_fdata(), np.clip(np.round(raw.data), 0, 255))
    assert os.path.getsize(tmp_path / "mr_thin.nii.gz") < 3 * os.path.getsize(tmp_path / "mr.nii.gz") * 4
    code, _ = run(capsys, "upsample", tmp_path / "mr.nii.gz", tmp_path / "f.nii.gz", "--scale", "4", "--dtype", "float32")
    floats = nib.load(tmp_path / "f.nii.gz")
    assert code == 0 and floats.get_data_dtype() == np.float32 and floats.get_fdata().min() >= 0  # still no negatives
    np.testing.assert_allclose(floats.get_fdata(), out.get_fdata(), atol=0.5 + 1e-4)  # the same values, unrounded

    seg = (head > 100).astype(np.uint8) * 5
    nib.save(nib.Nifti1Image(seg, np.diag([1.0, 1.0, 4.0, 1.0])), tmp_path / "seg.nii.gz")
    assert run(capsys, "upsample", tmp_path / "seg.nii.gz", tmp_path / "seg_thin.nii.gz", "--scale", "4",
               "--labels", "--preview", tmp_path / "seg.png")[0] == 0
    labels = nib.load(tmp_path / "seg_thin.nii.gz")
    assert labels.get_data_dtype() == np.uint8 and set(np.unique(labels.get_fdata())) == {0.0, 5.0}

    ct = tmp_path / "ct"
    write_series(str(ct), phantom((40, 36, 8)) * 2.0 - 1024.0, slice_step=5.0)
    for path in os.listdir(ct):
        ds = pydicom.dcmread(ct / path)
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.save_as(ct / path)
    assert run(capsys, "upsample", ct, tmp_path / "ct_thin", "--scale", "2.5")[0] == 0
    first = pydicom.dcmread(sorted((tmp_path / "ct_thin").glob("*.dcm"))[0])
    assert (float(first.WindowCenter), float(first.WindowWidth)) == (40.0, 400.0)
    assert staging_left(tmp_path) == []
    hu = np.stack([pydicom.dcmread(p).pixel_array * 1.0 - 1024.0 for p in (tmp_path / "ct_thin").glob("*.dcm")])
    assert hu.min() >= -1024.0  # no darker than air


def test_bad_requests_exit_2_with_one_line_and_write_nothing(capsys, tmp_path, ct_series_dir, anatomical_path):
    (tmp_path / "preview.png").write_bytes(b"an earlier preview")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "metrics.json").write_text("{}")
    (tmp_path / "exp" / "soupgan_thin_to_thin_x3" / "1").mkdir(parents=True)  # an earlier export's version 1 of x3
    thick6 = tmp_path / "thick6.nii.gz"
    nib.save(nib.Nifti1Image(phantom((20, 20, 6)), np.diag([1.0, 1.0, 6.0, 1.0])), thick6)
    cases = {
        ("evaluate", ct_series_dir, "--out", tmp_path / "e1"):
            "volume 16 x 16 x 5 is too small to score at x2: SSIM needs at least 11 voxels along every axis",
        ("evaluate", anatomical_path, "--scales", "2,3.3", "--out", tmp_path / "e2"):
            "--scales 2,3.3: scale 3.3 is not a ratio p/q with q <= 8 (like 2.5 or 3.75)",
        ("evaluate", anatomical_path, "--scales", "2", "--out", tmp_path / "done"):
            "metrics.json exists; pass --force to replace it",
        ("export", "--out", tmp_path / "export", "--scales", "7"): "scale 7 is outside the model's range [2, 6]",
        ("export", "--out", tmp_path / "exp", "--scales", "2,3", "--version", "1"):
            "soupgan_thin_to_thin_x3/1 exists: versions are immutable, choose another --version",
        ("upsample", thick6, tmp_path / "o.nii.gz", "--target-spacing", "6"):
            "--target-spacing 6 mm: the input's slices are 6 mm apart already (scale 1); ask for a spacing below 6 mm",
        ("upsample", thick6, tmp_path / "out.nii.bz2", "--scale", "2"):
            "out.nii.bz2: not .nii/.nii.gz, and a DICOM series goes to a folder",
        ("upsample", thick6, tmp_path / "o.nii.gz", "--scale", "2", "--batch-size", "0"): "--batch-size 0: must be >= 1",
        ("upsample", thick6, tmp_path / "o.nii.gz", "--scale", "2", "--preview", tmp_path / "preview.png"):
            "preview.png exists; pass --force to replace it",
        ("upsample", thick6, tmp_path / "o_series", "--scale", "2", "--dtype", "float32"):
            "--dtype float32: a DICOM series is stored as 16-bit integers",
        ("upsample", anatomical_path, tmp_path / "o.nii.gz", "--scale", "2"):
            "no axis is clearly the thick one (voxels 2 x 2 x 2 mm); pass --axis 0, 1 or 2",
        ("degrade", anatomical_path, "-o", tmp_path / "preview.png", "--scale", "2"): "output must end in .nii",
    }
    for args, reason in cases.items():
        code, lines = run(capsys, *args)
        assert code == 2 and len(lines) == 1 and reason in lines[0], (args, lines)
    assert sorted(os.listdir(tmp_path)) == ["done", "exp", "preview.png", "thick6.nii.gz"]  # nothing written
    assert os.listdir(tmp_path / "exp") == ["soupgan_thin_to_thin_x3"]  # x2 was not exported before x3 was refused
    assert (tmp_path / "preview.png").read_bytes() == b"an earlier preview"
    code, _ = run(capsys, "upsample", anatomical_path, tmp_path / "o.nii.gz", "--scale", "2", "--axis", "2")
    assert code == 0  # the same isotropic scan, with the axis named
