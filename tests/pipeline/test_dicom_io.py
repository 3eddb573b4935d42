import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.dicom_factory import write_series
from pipeline.io.dicom_io import read_dicom_series
from pipeline.errors import (
    DuplicateSliceError,
    MissingSliceError,
    MixedOrientationError,
    MultipleSeriesError,
    UnevenSpacingError,
    UnreadableFileError,
)
from pipeline.volume import hashed_id
from pipeline.io.volume_io import read_volume
from tests.conftest import DICOMDIR_TESTS


def test_real_ct_series_is_ordered_by_position_with_hu_and_ras_affine(ct_series_dir):
    volume = read_dicom_series(ct_series_dir)
    datasets = [pydicom.dcmread(os.path.join(ct_series_dir, name)) for name in sorted(os.listdir(ct_series_dir))]
    by_z = sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))
    # file names and InstanceNumbers both run against the positions here: only IPP gives this order
    assert [int(ds.InstanceNumber) for ds in by_z] == [10, 9, 8, 7, 6]
    assert volume.shape == (16, 16, 5) and volume.modality == "CT"
    for k, ds in enumerate(by_z):
        expected = ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(volume.data[:, :, k], expected)
    spacing = float(by_z[0].PixelSpacing[0])
    x0, y0, z0 = (float(v) for v in by_z[0].ImagePositionPatient)
    expected_affine = np.array([[-spacing, 0, 0, -x0], [0, -spacing, 0, -y0], [0, 0, 2.5, z0], [0, 0, 0, 1]])
    np.testing.assert_allclose(volume.affine, expected_affine, atol=1e-6)
    assert volume.volume_id == hashed_id(b"dicom-series", str(by_z[0].SeriesInstanceUID))
    assert volume.data.min() < -800  # Hounsfield units, not stored values


def test_file_list_order_does_not_matter(ct_series_dir):
    files = sorted(os.path.join(ct_series_dir, f) for f in os.listdir(ct_series_dir))
    forward = read_dicom_series(files)
    backward = read_dicom_series([(os.path.basename(p), open(p, "rb").read()) for p in reversed(files)])
    np.testing.assert_array_equal(forward.data, backward.data)
    np.testing.assert_array_equal(forward.affine, backward.affine)


def test_oblique_synthetic_series_places_every_voxel(tmp_path):
    rng = np.random.default_rng(3)
    truth = (rng.integers(-500, 1500, size=(12, 10, 7)) * 2.0 - 1024).astype(np.float32)  # on the stored grid
    row, col = np.array([0.8, 0.6, 0.0]), np.array([0.0, 0.0, -1.0])
    write_series(str(tmp_path), truth, row_cosine=row, column_cosine=col, pixel_spacing=(0.8, 0.7), slice_step=3.0, slope=2.0, intercept=-1024)
    volume = read_dicom_series(str(tmp_path))
    np.testing.assert_array_equal(volume.data, truth)
    # voxel (i, j, k) must land at IPP_k + i*0.7*row + j*0.8*col (LPS), i.e. RAS with x, y negated
    normal = np.cross(row, col)
    for i, j, k in [(0, 0, 0), (11, 9, 6), (5, 3, 2)]:
        lps = np.array([-100.0, -80.0, 30.0]) + k * 3.0 * normal + i * 0.7 * row + j * 0.8 * col
        np.testing.assert_allclose(volume.affine @ [i, j, k, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-5)


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="Debian's dcm2niix is not installed")
@pytest.mark.parametrize("which", ["real-ct", "synthetic-oblique"])
def test_matches_dcm2niix(tmp_path, ct_series_dir, which):
    if which == "real-ct":
        folder = ct_series_dir
    else:
        folder = str(tmp_path / "series")
        truth = np.random.default_rng(4).integers(-500, 1500, size=(20, 16, 9)).astype(np.float32)
        write_series(folder, truth, row_cosine=(0.96, 0.28, 0.0), column_cosine=(0.0, 0.0, -1.0), slice_step=2.0)
    out = tmp_path / "d2n"
    out.mkdir()
    subprocess.run(["dcm2niix", "-z", "n", "-f", "ref", "-o", str(out), folder], check=True, capture_output=True)
    reference = nib.as_closest_canonical(nib.load(out / "ref.nii"))
    volume = read_dicom_series(folder)
    ours = nib.as_closest_canonical(nib.Nifti1Image(volume.data, volume.affine))
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-3)
    np.testing.assert_allclose(ours.get_fdata(), reference.get_fdata(), atol=1e-3)


def test_real_series_with_a_gap_is_refused():
    with pytest.raises(MissingSliceError, match=r"gap of 202\.500 mm .* 1\.250 mm apart: 161 slice\(s\) missing") as err:
        read_dicom_series(os.path.join(DICOMDIR_TESTS, "77654033", "CT2"))
    assert "\n" not in str(err.value)


def test_missing_slice_in_synthetic_series(tmp_path):
    paths = write_series(str(tmp_path), np.zeros((8, 8, 6), np.float32))
    os.remove(paths[3])
    with pytest.raises(MissingSliceError, match="1 slice\\(s\\) missing"):
        read_dicom_series(str(tmp_path))


def test_duplicate_slice(tmp_path):
    volume = np.zeros((8, 8, 5), np.float32)
    positions = [np.array([0.0, 0.0, z]) for z in (0, 2.5, 5.0, 5.0, 7.5)]
    write_series(str(tmp_path), volume, positions=positions)
    with pytest.raises(DuplicateSliceError, match="same position"):
        read_dicom_series(str(tmp_path))


def test_uneven_spacing(tmp_path):
    positions = [np.array([0.0, 0.0, z]) for z in (0, 2.5, 5.0, 8.1, 10.6, 13.1)]
    write_series(str(tmp_path), np.zeros((8, 8, 6), np.float32), positions=positions)
    with pytest.raises(UnevenSpacingError, match="uneven slice spacing, 2.500 to 3.100 mm"):
        read_dicom_series(str(tmp_path))


def test_two_series_in_one_folder(tmp_path):
    write_series(str(tmp_path / "a"), np.zeros((8, 8, 4), np.float32), series_uid="1.2.3.100")
    write_series(str(tmp_path / "b"), np.ones((8, 8, 3), np.float32), series_uid="1.2.3.200")
    with pytest.raises(MultipleSeriesError, match=r"holds 2 DICOM series, choose one: 1\.2\.3\.100 \(4 files\), 1\.2\.3\.200 \(3 files\)"):
        read_dicom_series(str(tmp_path))
    chosen = read_volume(str(tmp_path), series_uid="1.2.3.200")
    assert chosen.shape == (8, 8, 3)


def test_real_multi_series_folder_and_radial_localizer():
    with pytest.raises(MultipleSeriesError):
        read_dicom_series(os.path.join(DICOMDIR_TESTS, "98892003", "MR2"))
    with pytest.raises(MixedOrientationError, match="ImageOrientationPatient"):
        read_dicom_series(os.path.join(DICOMDIR_TESTS, "98892003", "MR700"))


def test_folder_without_images_and_single_file(tmp_path, ct_series_dir):
    (tmp_path / "README.txt").write_text("no images here")
    with pytest.raises(UnreadableFileError, match="no DICOM images found"):
        read_dicom_series(str(tmp_path))
    single = os.path.join(ct_series_dir, sorted(os.listdir(ct_series_dir))[0])
    with pytest.raises(Exception, match="single DICOM file; pass the folder"):
        read_volume(single)


def test_truncated_dicom_pixel_data(tmp_path):
    paths = write_series(str(tmp_path), np.zeros((16, 16, 4), np.float32))
    raw = open(paths[1], "rb").read()
    open(paths[1], "wb").write(raw[:-200])
    with pytest.raises(UnreadableFileError, match="unreadable|pixel data"):
        read_dicom_series(str(tmp_path))
