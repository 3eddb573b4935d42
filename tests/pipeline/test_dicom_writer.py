"""DICOM series out: a derived series of the source's study, read back with the same voxels and geometry."""
import os
import shutil
import stat
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from pipeline.io.dicom_io import read_dicom_series, read_template
from pipeline.io.dicom_writer import write_dicom_series
from pipeline.errors import InputError
from pipeline.io.staging import written_series_files
from pipeline.volume import Volume
from tests.conftest import phantom
from tests.dicom_factory import write_series


def derived(folder):
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".dcm"))
    return [pydicom.dcmread(path) for path in files]


def test_a_derived_series_of_the_same_study_with_hu_and_geometry(tmp_path, ct_series_dir):
    source = read_dicom_series(ct_series_dir)
    thin = source.with_data(np.repeat(source.data, 2, axis=2)[..., :9], source.affine @ np.diag([1, 1, 0.5, 1]))
    template = read_template(ct_series_dir)
    uid = write_dicom_series(thin, str(tmp_path / "out"), template, description="soupgan x2 thin-to-thin")
    back = read_dicom_series(str(tmp_path / "out"))
    np.testing.assert_allclose(back.affine, thin.affine, atol=1e-3)
    np.testing.assert_array_equal(back.data, thin.data)  # same rescale: the HU come back exactly
    datasets = derived(str(tmp_path / "out"))
    first = datasets[0]
    assert first.SeriesInstanceUID == uid != template.SeriesInstanceUID
    assert first.StudyInstanceUID == template.StudyInstanceUID and first.PatientID == template.PatientID
    assert first.FrameOfReferenceUID == template.FrameOfReferenceUID
    assert list(first.ImageType)[:2] == ["DERIVED", "SECONDARY"] and first.Modality == "CT"
    assert (first.RescaleSlope, first.RescaleIntercept) == (template.RescaleSlope, template.RescaleIntercept)
    assert len({ds.SOPInstanceUID for ds in datasets}) == 9
    assert float(first.SliceThickness) == pytest.approx(1.25) and float(first.SpacingBetweenSlices) == pytest.approx(1.25)


def test_oblique_volume_with_another_slice_axis_round_trips(tmp_path):
    affine = np.array([[0, 0.9, 0, 10], [0, 0, 0.8, -5], [3.0, 0, 0, 7], [0, 0, 0, 1.0]])
    rotation = np.array([[np.cos(0.3), -np.sin(0.3), 0, 0], [np.sin(0.3), np.cos(0.3), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    volume = Volume(phantom((10, 20, 18)), rotation @ affine, "MR")
    write_dicom_series(volume, str(tmp_path / "mr"))
    back = read_dicom_series(str(tmp_path / "mr"))
    # slices are written along the slice axis (0): the series' arrays are (1, 2, 0) of the volume's
    np.testing.assert_allclose(back.affine, volume.affine[:, [1, 2, 0, 3]], atol=1e-4)
    data = np.transpose(volume.data, (1, 2, 0))
    assert np.abs(back.data - data).max() <= np.abs(data).max() / 32767  # one step of the int16 rescale


def test_folder_appears_whole_and_sheared_grids_are_refused(tmp_path):
    sheared = np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]])
    with pytest.raises(InputError, match="not perpendicular"):
        write_dicom_series(Volume(phantom((8, 8, 4)), sheared), str(tmp_path / "bad"))
    assert os.listdir(tmp_path) == []  # no half series, no staging folder left behind


def test_values_that_do_not_fit_the_source_rescale_get_a_rescale_of_their_own(tmp_path):
    write_series(str(tmp_path / "src"), np.zeros((8, 8, 3), np.float32), slope=1.0, intercept=-1024.0)
    volume = read_dicom_series(str(tmp_path / "src"))
    hot = volume.with_data(np.linspace(-1024.0, 40000.0, volume.data.size, dtype=np.float32).reshape(volume.shape))
    write_dicom_series(hot, str(tmp_path / "out"), read_template(str(tmp_path / "src")))
    first = derived(str(tmp_path / "out"))[0]
    step = float(first.RescaleSlope)
    assert step > 1.0 and float(first.RescaleIntercept) == 0.0  # not the source's 1 / -1024: 40000 HU would overflow
    np.testing.assert_allclose(read_dicom_series(str(tmp_path / "out")).data, hot.data, atol=step / 2 + 1e-3)


def test_unsigned_sources_stay_unsigned_and_keep_their_windows(tmp_path):
    source = tmp_path / "mr"
    write_series(str(source), phantom((8, 8, 3)) * 40.0, intercept=0.0)  # up to ~38000: beyond int16
    for path in os.listdir(source):
        ds = pydicom.dcmread(source / path)
        stored = np.frombuffer(ds.PixelData, np.int16).astype(np.uint16)
        ds.PixelRepresentation, ds.PixelData = 0, stored.tobytes()
        ds.WindowCenter, ds.WindowWidth = [300, 20000], [600, 40000]
        ds.save_as(source / path)
    volume = read_dicom_series(str(source))
    write_dicom_series(volume, str(tmp_path / "out"), read_template(str(source)))
    first = derived(str(tmp_path / "out"))[0]
    assert first.PixelRepresentation == 0 and (float(first.RescaleSlope), float(first.RescaleIntercept)) == (1.0, 0.0)
    assert [float(v) for v in first.WindowCenter] == [300.0, 20000.0]
    assert [float(v) for v in first.WindowWidth] == [600.0, 40000.0]
    np.testing.assert_array_equal(read_dicom_series(str(tmp_path / "out")).data, volume.data)


def test_a_series_is_marked_as_soupgans_and_readable_under_the_umask(tmp_path, ct_series_dir):
    previous = os.umask(0o022)
    try:
        write_dicom_series(read_dicom_series(ct_series_dir), str(tmp_path / "out"), read_template(ct_series_dir))
    finally:
        os.umask(previous)
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == [".soupgan-series.json", *[f"IM{k:05d}.dcm" for k in range(1, 6)]]
    assert written_series_files(str(tmp_path / "out")) == names
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o755


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="Debian's dcm2niix is not installed")
def test_dcm2niix_reads_the_written_series_with_the_same_geometry(tmp_path, ct_series_dir):
    source = read_dicom_series(ct_series_dir)
    thin = source.with_data(np.repeat(source.data, 2, axis=2)[..., :9], source.affine @ np.diag([1, 1, 0.5, 1]))
    write_dicom_series(thin, str(tmp_path / "series"), read_template(ct_series_dir))
    (tmp_path / "nii").mkdir()
    subprocess.run(["dcm2niix", "-z", "n", "-f", "out", "-o", str(tmp_path / "nii"), str(tmp_path / "series")],
                   check=True, capture_output=True)
    image = nib.load(str(tmp_path / "nii" / "out.nii"))
    world = lambda affine, ijk: (affine @ np.append(ijk, 1.0))[:3]
    data = image.get_fdata()  # scl_slope/inter applied: HU
    # dcm2niix may flip axes: compare voxel values at the same world positions
    inverse = np.linalg.inv(image.affine)
    for ijk in [(0, 0, 0), (15, 3, 8), (7, 11, 4)]:
        other = np.rint((inverse @ np.append(world(thin.affine, ijk), 1.0))[:3]).astype(int)
        assert data[tuple(other)] == pytest.approx(thin.data[ijk], abs=1e-3)
    np.testing.assert_allclose(np.abs(np.linalg.det(image.affine[:3, :3])), 0.488281 ** 2 * 1.25, rtol=1e-3)
