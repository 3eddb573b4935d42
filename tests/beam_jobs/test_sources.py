import os

from beam_jobs.sources import DICOM, NIFTI, expand_inputs
from tests.beam_jobs.inputs import make_inputs


def test_folder_tree_expands_to_one_source_per_volume(tmp_path):
    folder = make_inputs(str(tmp_path))
    sources, unmatched = expand_inputs([folder, str(tmp_path / "missing"), str(tmp_path / "none-*.nii.gz")])
    kinds = {os.path.relpath(s.path, folder): s.kind for s in sources}
    assert kinds == {
        "corrupt.nii.gz": NIFTI, "empty.nii": NIFTI, "mr0.nii.gz": NIFTI, "mr1.nii.gz": NIFTI, "mr2.nii.gz": NIFTI,
        "nested/thick_first.nii": NIFTI, "nested/too_small.nii.gz": NIFTI, "ct_series": DICOM, "nested/gap_series": DICOM,
    }
    (series,) = [s for s in sources if s.kind == DICOM and s.path.endswith("ct_series")]
    assert len(series.files) == 36 and not any(f.endswith("notes.txt") for f in series.files)
    assert [u["source"] for u in unmatched] == [str(tmp_path / "missing"), str(tmp_path / "none-*.nii.gz")]
    assert {u["stage"] for u in unmatched} == {"expand"}


def test_globs_and_single_files_and_duplicates(tmp_path):
    folder = make_inputs(str(tmp_path))
    sources, unmatched = expand_inputs([os.path.join(folder, "mr*.nii.gz"), os.path.join(folder, "mr1.nii.gz")])
    assert [os.path.basename(s.path) for s in sources] == ["mr0.nii.gz", "mr1.nii.gz", "mr2.nii.gz"]
    assert not unmatched
