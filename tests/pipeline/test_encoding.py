"""Outputs in the input's terms: its stored type and scaling, inside the range it can hold, its display window."""
import nibabel as nib
import numpy as np
import pydicom

from pipeline.io.dicom_io import dicom_encoding, read_dicom_series, read_series_encoding, read_template
from pipeline.io.encoding import Encoding, in_input_range, value_bounds
from pipeline.io.nifti_io import nifti_encoding, read_nifti, write_nifti
from pipeline.volume import Volume
from tests.conftest import phantom
from tests.dicom_factory import write_series


def test_an_encoding_stores_and_bounds_real_values():
    uint8 = Encoding(np.uint8)
    assert uint8.real_range() == (0.0, 255.0) and uint8.is_integer
    np.testing.assert_array_equal(uint8.encode(np.array([-3.0, 0.4, 0.6, 254.5, 300.0])), [0, 0, 1, 254, 255])
    scaled = Encoding(np.int16, slope=0.5, intercept=-1024.0)
    assert scaled.real_range() == (-32768 * 0.5 - 1024.0, 32767 * 0.5 - 1024.0)
    np.testing.assert_array_equal(scaled.encode(np.array([-1024.0, -1000.0])), [0, 48])
    assert Encoding().real_range() == (-np.inf, np.inf)
    as_float = scaled.written_as("float32")
    assert as_float.dtype == np.float32 and (as_float.slope, as_float.intercept) == (1.0, 0.0)
    assert scaled.written_as("input") is scaled
    assert Encoding(np.dtype(">i2")).dtype == np.dtype("<i2")  # big-endian scans are written in native order
    assert Encoding(np.complex64).dtype == np.float32 and Encoding(np.int16, slope=np.nan).slope == 1.0


def test_value_bounds_follow_the_modality_and_the_type():
    affine = np.eye(4)
    assert value_bounds(Volume(phantom((8, 8, 4)), affine, "MR")) == (0.0, np.inf)  # magnitudes never go negative
    ct = Volume(phantom((8, 8, 4)) - 1024.0, affine, "CT")
    assert value_bounds(ct, Encoding(np.int16, 1.0, -1024.0)) == (-1024.0, 32767.0 - 1024.0)
    padded = Volume(np.full((8, 8, 4), -3024.0, np.float32), affine, "CT")  # outside the field of view
    assert value_bounds(padded)[0] == -3024.0
    signed_mr = Volume(phantom((8, 8, 4)) - 10.0, affine, "MR")  # already holds negatives: no floor
    assert value_bounds(signed_mr, Encoding(np.int16)) == (-32768.0, 32767.0)
    assert value_bounds(Volume(phantom((8, 8, 4)), affine), Encoding(np.uint8)) == (0.0, 255.0)


def test_overshoot_is_clipped_to_what_the_input_can_hold():
    source = Volume(phantom((8, 8, 4)), np.eye(4), "MR")
    ringing = source.with_data(source.data - 21.0)
    clipped = in_input_range(ringing, source, Encoding(np.uint8))
    assert clipped.data.min() == 0.0 and clipped.data.max() == 255.0
    assert in_input_range(source, source) is source  # nothing to clip: the same volume back


def test_nifti_keeps_its_integer_type_and_scaling(tmp_path):
    data = (phantom((10, 12, 5)) / 4).astype(np.uint8)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 3.0, 1.0])), tmp_path / "u8.nii.gz")
    encoding = nifti_encoding(tmp_path / "u8.nii.gz")
    assert encoding.dtype == np.uint8 and (encoding.slope, encoding.intercept) == (1.0, 0.0)
    volume = read_nifti(tmp_path / "u8.nii.gz")
    write_nifti(volume, tmp_path / "again.nii.gz", encoding)
    image = nib.load(tmp_path / "again.nii.gz")
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), data)

    scaled = Encoding(np.int16, slope=0.25, intercept=-100.0)
    write_nifti(volume, tmp_path / "scaled.nii", scaled)
    assert nifti_encoding(tmp_path / "scaled.nii") == scaled
    np.testing.assert_allclose(read_nifti(tmp_path / "scaled.nii").data, volume.data, atol=0.125)


def test_dicom_encoding_reads_sign_rescale_and_window(tmp_path):
    write_series(str(tmp_path / "ct"), phantom((8, 8, 3)) - 1000.0, slope=1.0, intercept=-1024.0)
    template = read_template(str(tmp_path / "ct"))
    assert dicom_encoding(template) == Encoding(np.int16, 1.0, -1024.0, None)
    template.PixelRepresentation, template.BitsAllocated = 0, 16
    template.WindowCenter, template.WindowWidth = [40, 500], [400, 2000]
    assert dicom_encoding(template) == Encoding(np.uint16, 1.0, -1024.0, (40.0, 400.0))
    template.WindowWidth = 0
    assert dicom_encoding(template).window is None
    template.RescaleSlope = float("nan")
    assert dicom_encoding(template).slope == 1.0


def test_a_series_rescaled_slice_by_slice_is_held_as_floats(tmp_path):
    """PET-like: each slice its own RescaleSlope, so no one slice's 16-bit range bounds the volume."""
    paths = write_series(str(tmp_path / "pet"), np.full((8, 8, 3), 20000.0, np.float32), slope=1.0, intercept=0.0)
    assert read_series_encoding(str(tmp_path / "pet")) == Encoding(np.int16, 1.0, 0.0)
    last = pydicom.dcmread(paths[-1])
    last.RescaleSlope = 4.0
    last.save_as(paths[-1])
    assert read_series_encoding(str(tmp_path / "pet")).dtype == np.float32
    volume = read_dicom_series(str(tmp_path / "pet"))
    assert volume.data.max() == 80000.0
    assert value_bounds(volume, read_series_encoding(str(tmp_path / "pet"))) == (0.0, np.inf)
