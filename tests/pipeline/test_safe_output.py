"""Outputs never cost data: apart from the inputs, replaced only when soupgan wrote them, checked writable
before any compute and again when published, published whole, staging from killed runs cleaned (and a series
they had moved aside put back), created under the umask."""
import json
import os
import stat
import subprocess
import sys

import pytest

from pipeline.io import staging
from pipeline.errors import InputError
from pipeline.io.safe_output import check_apart_from_inputs, check_output, check_writable
from pipeline.io.staging import (OWNER_FILE, STAGING_PREFIX, check_replaceable, remove_stale_staging, staged,
                              write_series_marker)
from tests.read_only import read_only_folder


def test_an_output_may_not_be_hold_or_lie_inside_an_input(tmp_path):
    study = tmp_path / "study"
    (study / "ct").mkdir(parents=True)
    (study / "ct" / "IM1.dcm").write_bytes(b"dicom")
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"nifti")
    os.link(scan, tmp_path / "hard_link.nii.gz")
    refusals = {
        (study, study / "ct"): "holds the input",
        (study / "ct", study / "ct"): "is the input",
        (study / "ct" / "thin", study / "ct"): "lies inside the input folder",
        (scan, scan): "is the input",
        (tmp_path / "hard_link.nii.gz", scan): "is the input",
        (tmp_path / "." / "scan.nii.gz", scan): "is the input",
    }
    for (output, source), reason in refusals.items():
        with pytest.raises(InputError, match=reason):
            check_apart_from_inputs(output, [source])
    check_apart_from_inputs(tmp_path / "thin", [study / "ct", scan])  # a sibling is fine


def test_force_replaces_files_and_series_soupgan_wrote_never_other_folders(tmp_path):
    (tmp_path / "old.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="exists; pass --force"):
        check_replaceable(tmp_path / "old.nii.gz", force=False)
    check_replaceable(tmp_path / "old.nii.gz", force=True)
    with pytest.raises(InputError, match="is a folder; --force replaces a file"):
        check_replaceable(tmp_path, force=True)

    ours = tmp_path / "ours"
    ours.mkdir()
    for name in ("IM00001.dcm", "IM00002.dcm"):
        (ours / name).write_bytes(b"d")
    write_series_marker(str(ours), ["IM00001.dcm", "IM00002.dcm"], "1.2.3")
    check_replaceable(ours, force=True, folder=True)
    (ours / "report.txt").write_text("the radiologist's notes")
    with pytest.raises(InputError, match=r"holds files soupgan did not write \(e.g. report.txt\)"):
        check_replaceable(ours, force=True, folder=True)

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "IM00001.dcm").write_bytes(b"d")  # looks like ours, but no marker
    with pytest.raises(InputError, match="holds files soupgan did not write"):
        check_replaceable(theirs, force=True, folder=True)
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", force=True, folder=True)
    with pytest.raises(InputError, match="is not a folder"):
        check_replaceable(tmp_path / "old.nii.gz", force=True, folder=True)


def test_unwritable_and_missing_locations_are_refused(tmp_path):
    with pytest.raises(InputError, match="no such folder for the output"):
        check_writable(tmp_path / "missing" / "out.nii.gz")
    check_writable(tmp_path / "new" / "deeper" / "metrics.json", make_parents=True)
    with read_only_folder(tmp_path / "ro") as folder:
        for path, parents in ((os.path.join(folder, "out.nii.gz"), False), (os.path.join(folder, "a", "b"), True)):
            with pytest.raises(InputError, match=r"cannot write in .*\((Read-only file system|Permission denied)\)"):
                check_output(path, force=False, make_parents=parents)
        assert os.listdir(folder) == []


def test_staged_outputs_appear_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.nii.gz"
    with staged(target) as written:
        with open(written, "wb") as handle:
            handle.write(b"new")
        assert not target.exists()  # nothing under the final name until the write is done
    assert target.read_bytes() == b"new"

    with pytest.raises(RuntimeError):
        with staged(target) as written:
            with open(written, "wb") as handle:
                handle.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["out.nii.gz"]

    series = tmp_path / "series"
    series.mkdir()
    (series / "old.dcm").write_bytes(b"old")
    write_series_marker(str(series), ["old.dcm"], "1.2.3")
    with staged(series) as written:
        os.mkdir(written)
        with open(os.path.join(written, "IM00001.dcm"), "wb") as handle:
            handle.write(b"new")
    assert os.listdir(series) == ["IM00001.dcm"] and sorted(os.listdir(tmp_path)) == ["out.nii.gz", "series"]


def _staging(parent, owner: dict | None, age_seconds: float = 0.0, previous: bool = False) -> str:
    path = os.path.join(parent, f"{STAGING_PREFIX}{len(os.listdir(parent))}")
    os.mkdir(path)
    if owner is not None:
        with open(os.path.join(path, OWNER_FILE), "w") as handle:
            json.dump(owner, handle)
    if previous:
        os.mkdir(os.path.join(path, "previous"))
        with open(os.path.join(path, "previous", "IM00001.dcm"), "wb") as handle:
            handle.write(b"the series it had moved aside")
    if age_seconds:
        old = os.stat(path).st_mtime - age_seconds
        os.utime(path, (old, old))
    return path


def _owner(tmp_path, **changes) -> dict:
    return {**staging._owner(str(tmp_path / "series")), **changes}


def test_staging_of_killed_runs_is_removed_and_live_runs_are_left_alone(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    dead = _staging(tmp_path, _owner(tmp_path, pid=dead_pid))
    alive = _staging(tmp_path, _owner(tmp_path))
    reused_pid = _staging(tmp_path, _owner(tmp_path, process_start="1"))  # this PID, but another process's start
    elsewhere = _staging(tmp_path, _owner(tmp_path, host="another-host", pid=dead_pid))
    other_container = _staging(tmp_path, _owner(tmp_path, pid_namespace="pid:[1]", pid=dead_pid))
    rebooted = _staging(tmp_path, _owner(tmp_path, boot="an-earlier-boot"))
    unowned_old = _staging(tmp_path, None, age_seconds=2 * 24 * 3600)
    unowned_new = _staging(tmp_path, None)
    (tmp_path / "keep.txt").write_text("not ours")
    assert sorted(remove_stale_staging(str(tmp_path))) == sorted([dead, reused_pid, rebooted, unowned_old])
    kept = (alive, elsewhere, other_container, unowned_new, "keep.txt")
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in kept)


def test_a_series_a_killed_run_had_moved_aside_is_put_back(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _staging(tmp_path, _owner(tmp_path, pid=int(finished.stdout)), previous=True)
    remove_stale_staging(str(tmp_path))
    assert os.listdir(tmp_path) == ["series"]
    assert (tmp_path / "series" / "IM00001.dcm").read_bytes() == b"the series it had moved aside"


def test_what_appears_during_a_run_is_checked_again_when_it_publishes(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(InputError, match="appeared while this run computed; it was kept"):
        with staged(target, replace=False) as written:
            with open(written, "wb") as handle:
                handle.write(b"ours")
            target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's" and os.listdir(tmp_path) == ["out.nii.gz"]

    series = tmp_path / "series"
    series.mkdir()
    write_series_marker(str(series), [], "1.2.3")
    with pytest.raises(InputError, match=r"holds files soupgan did not write \(e.g. notes.txt\)"):
        with staged(series, replace=True) as written:
            os.mkdir(written)
            (series / "notes.txt").write_text("added while the run computed")
    assert (series / "notes.txt").exists() and sorted(os.listdir(tmp_path)) == ["out.nii.gz", "series"]


def test_an_interruption_between_the_two_renames_puts_the_old_series_back(tmp_path, monkeypatch):
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM00001.dcm").write_bytes(b"old")
    write_series_marker(str(series), ["IM00001.dcm"], "1.2.3")
    renames = []

    def rename_then_interrupt(source, destination):
        renames.append(destination)
        if len(renames) == 2:  # after the old series moved aside, before the new one moved in
            raise KeyboardInterrupt
        os.replace(source, destination)

    monkeypatch.setattr(staging.os, "rename", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with staged(series) as written:
            os.mkdir(written)
            with open(os.path.join(written, "IM00001.dcm"), "wb") as handle:
                handle.write(b"new")
    assert (series / "IM00001.dcm").read_bytes() == b"old" and os.listdir(tmp_path) == ["series"]


def test_outputs_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        with staged(tmp_path / "series") as written:
            os.mkdir(written)
            with open(os.path.join(written, "IM00001.dcm"), "wb") as handle:
                handle.write(b"d")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "series").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(tmp_path / "series" / "IM00001.dcm").st_mode) == 0o640
