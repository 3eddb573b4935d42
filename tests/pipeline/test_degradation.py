import numpy as np
import pytest
from scipy import signal

from pipeline.config import (GAUSSIAN, THIN_TO_THICK, THIN_TO_THIN, parse_fractional_scales, parse_scales,
                             scale_ratio)
from pipeline.method.degradation import default_sigma, degrade, degrade_volume, thin_reference
from pipeline.errors import InputError, VolumeShapeError
from pipeline.method.geometry import degraded_affine, upsampled_affine


def ramp(n, axis, shape=(3, 4)):
    """A volume whose value is the slice index along `axis`."""
    full = list(shape)
    full.insert(axis, n)
    index = np.arange(n, dtype=np.float32).reshape([n if a == axis else 1 for a in range(3)])
    return np.broadcast_to(index, full).copy()


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("scale", [2, 3, 4, 5, 6])
def test_thin_to_thick_of_a_ramp_is_the_slab_centre(axis, scale):
    n = 6 * scale + scale - 1  # a trailing partial slab, which must be dropped
    low = degrade(ramp(n, axis), scale, "thin-to-thick", axis)
    assert low.shape[axis] == 6
    expected = np.arange(6) * scale + (scale - 1) / 2.0
    np.testing.assert_allclose(np.moveaxis(low, axis, 0)[:, 0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4, 5, 6])
def test_thin_to_thick_is_boxcar_fir_then_decimation(scale):
    """Check against the definition: FIR with b = 1/s (scipy.signal.lfilter), then every s-th output."""
    rng = np.random.default_rng(scale)
    hr = rng.normal(size=(5, 4, 37)).astype(np.float32)
    filtered = signal.lfilter(np.full(scale, 1.0 / scale), [1.0], hr.astype(np.float64), axis=2)
    reference = filtered[:, :, scale - 1 :: scale][:, :, : 37 // scale]
    np.testing.assert_allclose(degrade(hr, scale, "thin-to-thick", 2), reference, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4, 5, 6])
def test_thin_to_thin_takes_every_sth_slice(scale):
    hr = np.random.default_rng(0).normal(size=(4, 31, 5)).astype(np.float32)
    low = degrade(hr, scale, "thin-to-thin", 1)
    np.testing.assert_array_equal(low, hr[:, ::scale])
    assert low.shape[1] == -(-31 // scale)


def test_gaussian_is_between_thin_and_thick():
    hr = np.random.default_rng(1).normal(size=(6, 6, 60)).astype(np.float32)
    np.testing.assert_array_equal(degrade(hr, 3, "gaussian", 2, sigma=0), degrade(hr, 3, "thin-to-thin", 2))
    # a linear ramp is preserved by a symmetric low-pass away from the ends, at the thin-to-thin positions
    low = degrade(ramp(60, 2), 3, "gaussian", 2)
    np.testing.assert_allclose(low[0, 0, 2:-2], np.arange(60)[::3][2:-2], atol=1e-4)
    # smoothing lowers the variance of white noise: more than thin-to-thin, less than the s-slice boxcar
    var = {c: degrade(hr, 3, c, 2).var() for c in ("thin-to-thin", "gaussian", "thin-to-thick")}
    assert var["thin-to-thick"] < var["gaussian"] < var["thin-to-thin"]
    assert default_sigma(4) == pytest.approx(4 / (2 * np.sqrt(12)))


def test_bad_scales_and_too_few_slices():
    hr = np.zeros((4, 4, 10), np.float32)
    with pytest.raises(InputError, match="integer scale >= 2"):
        degrade(hr, 2.5, "thin-to-thick", 2)
    with pytest.raises(InputError, match="integer scale >= 2"):
        degrade(hr, 1, "thin-to-thin", 2)
    with pytest.raises(VolumeShapeError, match="10 slices are too few to degrade by 6"):
        degrade(hr, 6, "thin-to-thick", 2)
    with pytest.raises(InputError, match="unknown criterion 'thick'"):
        degrade(hr, 2, "thick", 2)


@pytest.mark.parametrize("criterion", ["thin-to-thin", "thin-to-thick", "gaussian"])
def test_degraded_volume_geometry(phantom_volume, criterion):
    scale, axis = 4, 2
    low = degrade_volume(phantom_volume, scale, criterion)
    assert low.volume_id == phantom_volume.volume_id
    np.testing.assert_allclose(low.spacing, [1, 1, 4])
    for k in range(low.shape[axis]):
        members = [k * scale] if criterion != "thin-to-thick" else range(k * scale, k * scale + scale)
        hr_world = np.mean([phantom_volume.affine @ [0, 0, m, 1] for m in members], axis=0)
        np.testing.assert_allclose(low.affine @ [0, 0, k, 1], hr_world, atol=1e-9)


@pytest.mark.parametrize("criterion", ["thin-to-thin", "thin-to-thick"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_upsampled_affine_undoes_degraded_affine(criterion, axis):
    affine = np.array([[0.2, -0.9, 0.1, 10], [0.95, 0.15, 0.0, -5], [0.0, 0.1, 1.2, 33], [0, 0, 0, 1]])
    for scale in (2, 3, 5):
        back = upsampled_affine(degraded_affine(affine, axis, scale, criterion), axis, scale, criterion)
        np.testing.assert_allclose(back, affine, atol=1e-12)


def test_scale_ratios_and_the_thin_slices_they_pair_with():
    assert [scale_ratio(s) for s in (2, 2.5, 3.75, 8 / 3, 6.0, "8/3", " 2.5", float(np.float32(8 / 3)))] == [
        (2, 1), (5, 2), (15, 4), (8, 3), (6, 1), (8, 3), (5, 2), (8, 3)]  # the last as a float32 record holds it
    for bad in (2.33, 2.01, "7/9 + 2"):
        with pytest.raises(InputError, match="is not a ratio p/q with q <= 8|is not a number like 2, 2.5 or 8/3"):
            scale_ratio(bad)
    with pytest.raises(InputError, match="scale 1.5 is below 2"):
        scale_ratio(1.5)
    with pytest.raises(InputError, match="scale 2.5 is not a whole number"):
        scale_ratio(2.5, max_denominator=1)
    assert parse_fractional_scales("3, 2.5,5/2,8/3") == (2.5, 8 / 3, 3) and parse_scales("4,2,2") == (2, 4)
    with pytest.raises(InputError, match="scale 2.5 is not a whole number"):
        parse_scales("2,2.5")
    data = np.arange(7 * 2 * 3, dtype=np.float32).reshape(2, 7, 3)
    np.testing.assert_array_equal(thin_reference(data, 1, THIN_TO_THICK, 1), data)
    np.testing.assert_array_equal(thin_reference(data, 3, THIN_TO_THIN, 1), data[:, ::3])
    np.testing.assert_array_equal(thin_reference(data, 3, GAUSSIAN, 1), data[:, ::3])
    np.testing.assert_allclose(thin_reference(data, 3, THIN_TO_THICK, 1), data[:, :6].reshape(2, 2, 3, 3).mean(2))
