import contextlib
import os

import pytest

from beam_jobs.sources import DICOM, NIFTI, expand_inputs
from tests.beam_jobs.inputs import make_inputs
from tests.s3_server import local_s3


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


def test_an_unknown_scheme_is_a_dead_letter_with_its_reason(tmp_path):
    sources, unmatched = expand_inputs(["xyz://bucket/folder", "xyz://bucket/scan.nii.gz", "xyz://bucket/*.nii"])
    assert sources == [] and len(unmatched) == 3
    assert all("Unable to get filesystem" in letter["reason"] for letter in unmatched), unmatched


def test_globs_and_single_files_and_duplicates(tmp_path):
    folder = make_inputs(str(tmp_path))
    sources, unmatched = expand_inputs([os.path.join(folder, "mr*.nii.gz"), os.path.join(folder, "mr1.nii.gz")])
    assert [os.path.basename(s.path) for s in sources] == ["mr0.nii.gz", "mr1.nii.gz", "mr2.nii.gz"]
    assert not unmatched


@contextlib.contextmanager
def _beam_file_system_options():
    """Beam's file-system options are process-wide: put the defaults back after a test sets them."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    try:
        yield
    finally:
        FileSystems.set_options(PipelineOptions([]))


def test_an_object_store_that_refuses_us_is_not_reported_as_missing_input(monkeypatch):
    """With credentials the S3 server (moto on 127.0.0.1) does not know, listing fails with 403: the dead letter
    says so, where it used to say "nothing matched"."""
    pytest.importorskip("moto")
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from moto import settings

    with local_s3("scans") as (endpoint, client, _), _beam_file_system_options():
        client.put_object(Bucket="scans", Key="mr/a.nii.gz", Body=b"x")
        FileSystems.set_options(PipelineOptions([f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=testing",
                                                 "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"]))
        inputs = ["s3://scans/mr", "s3://scans/mr/a.nii.gz", "s3://scans/none"]
        sources, unmatched = expand_inputs(inputs)
        assert [s.path for s in sources] == ["s3://scans/mr/a.nii.gz"] and len(unmatched) == 1
        assert unmatched[0]["reason"] == "no such file or folder, or nothing matched"

        monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # from now on moto checks credentials
        sources, unmatched = expand_inputs(inputs)
    assert sources == [] and [u["source"] for u in unmatched] == inputs
    reasons = [u["reason"] for u in unmatched]
    assert "cannot list" in reasons[0] and "InvalidAccessKeyId" in reasons[0], reasons
    assert "cannot check" in reasons[1] and "403" in reasons[1], reasons
    assert all("\n" not in reason for reason in reasons)
