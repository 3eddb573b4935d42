import gzip

import nibabel as nib
import numpy as np
import pytest

from pipeline.errors import InputError, NonFiniteVoxelsError, UnreadableFileError, VolumeShapeError
from pipeline.io.nifti_io import nifti_from_bytes, nifti_to_bytes, read_nifti, write_nifti
from pipeline.volume import Volume


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_round_trip_keeps_voxels_and_affine(tmp_path, phantom_volume, suffix):
    path = tmp_path / f"vol{suffix}"
    write_nifti(phantom_volume, path)
    back = read_nifti(path)
    np.testing.assert_array_equal(back.data, phantom_volume.data)
    np.testing.assert_allclose(back.affine, phantom_volume.affine, atol=1e-5)
    assert back.volume_id == phantom_volume.volume_id
    header = nib.load(path).header
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    assert header.get_xyzt_units()[0] == "mm"


def test_oblique_affine_survives(tmp_path):
    theta = np.deg2rad(17)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]) @ np.diag([0.9, 0.9, 4.0])
    affine[:3, 3] = [-50.5, 20.25, 3.0]
    volume = Volume(np.arange(60, dtype=np.float32).reshape(3, 4, 5), affine)
    write_nifti(volume, tmp_path / "o.nii.gz")
    np.testing.assert_allclose(read_nifti(tmp_path / "o.nii.gz").affine, affine, atol=1e-5)


def test_reads_nibabels_real_t1_like_nibabel(anatomical_path):
    volume = read_nifti(anatomical_path)
    reference = nib.load(anatomical_path)
    assert volume.shape == (33, 41, 25)
    np.testing.assert_array_equal(volume.affine, reference.affine)
    np.testing.assert_array_equal(volume.data, reference.get_fdata(dtype=np.float32))
    with open(anatomical_path, "rb") as handle:
        assert nifti_from_bytes(handle.read()).volume_id == volume.volume_id


def test_scaling_slope_and_trailing_singleton_axis(tmp_path):
    image = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4, 1), np.eye(4))
    image.header.set_slope_inter(0.5, -10)
    nib.save(image, tmp_path / "scaled.nii")
    volume = read_nifti(tmp_path / "scaled.nii")
    assert volume.shape == (2, 3, 4)
    np.testing.assert_allclose(volume.data, np.arange(24).reshape(2, 3, 4) * 0.5 - 10)


def _saved(tmp_path, array, name="x.nii.gz"):
    nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / name)
    return tmp_path / name


def _one_line(err):
    text = str(err.value)
    assert "\n" not in text and text
    return text


def test_truncated_gzip(tmp_path, phantom_volume):
    raw = nifti_to_bytes(phantom_volume)
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UnreadableFileError, match="cut.nii.gz: corrupt or truncated gzip") as err:
        read_nifti(tmp_path / "cut.nii.gz")
    _one_line(err)


def test_truncated_uncompressed(tmp_path, phantom_volume):
    raw = nifti_to_bytes(phantom_volume, compress=False)
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(UnreadableFileError, match="cut.nii: unreadable NIfTI") as err:
        read_nifti(tmp_path / "cut.nii")
    _one_line(err)


def test_empty_and_foreign_files(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="empty.nii.gz: empty file"):
        read_nifti(tmp_path / "empty.nii.gz")
    (tmp_path / "text.nii").write_bytes(b"hello, this is not an image" * 40)
    with pytest.raises(UnreadableFileError, match="not a NIfTI"):
        read_nifti(tmp_path / "text.nii")
    (tmp_path / "text.nii.gz").write_bytes(gzip.compress(b"hello" * 100))
    with pytest.raises(UnreadableFileError, match="not a NIfTI"):
        read_nifti(tmp_path / "text.nii.gz")
    with pytest.raises(UnreadableFileError, match="No such file"):
        read_nifti(tmp_path / "missing.nii")


def test_2d_and_4d_are_refused(tmp_path):
    with pytest.raises(VolumeShapeError, match=r"2D data of shape \(8, 9\)") as err:
        read_nifti(_saved(tmp_path, np.zeros((8, 9), np.float32), "2d.nii.gz"))
    _one_line(err)
    with pytest.raises(VolumeShapeError, match=r"4D data of shape \(8, 9, 10, 3\)"):
        read_nifti(_saved(tmp_path, np.zeros((8, 9, 10, 3), np.float32), "4d.nii.gz"))


def test_nan_voxels_are_refused(tmp_path):
    data = np.ones((6, 6, 6), np.float32)
    data[0, 0, :2] = np.nan
    with pytest.raises(NonFiniteVoxelsError, match="2 of 216 voxels are NaN or infinite"):
        read_nifti(_saved(tmp_path, data))


def test_write_refuses_other_suffixes(tmp_path, phantom_volume):
    with pytest.raises(InputError, match="must end in .nii or .nii.gz"):
        write_nifti(phantom_volume, tmp_path / "out.mha")
