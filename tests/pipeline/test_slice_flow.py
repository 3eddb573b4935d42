"""Flow-guided slice interpolation: structure that moves in-plane between slices is followed, not ghosted;
measured slices kept; any range of thin slices equals that range of the whole; every slice axis."""
import numpy as np
import pytest

from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.consistency import slab_means_matrix
from pipeline.errors import VolumeShapeError
from pipeline.method.geometry import upsampled_length
from pipeline.method.interpolation import upsample
from pipeline.metrics import psnr
from pipeline.method.slice_flow import WARPS, flow_upsample, input_upsample


def moving_disc(slices=25, size=48, step=0.6):
    """Slices of a soft-edged bright disc whose centre moves `step` voxels in-plane per slice (an oblique tube),
    in normalised intensities."""
    rows, columns = np.mgrid[:size, :size].astype(np.float32)
    centre = size / 2 - slices * step / 2
    discs = [np.hypot(rows - size / 2, columns - (centre + k * step)) for k in range(slices)]
    return np.stack([1 / (1 + np.exp(distance - 9.0)) for distance in discs]).astype(np.float32)


@pytest.mark.parametrize("scale", [3, 4, 6])
def test_a_structure_moving_between_slices_is_followed_where_the_spline_ghosts_it(scale):
    truth = moving_disc()
    thick = truth[::scale]
    n_thin = upsampled_length(len(thick), scale, THIN_TO_THIN)
    flow, spline = flow_upsample(thick, scale, THIN_TO_THIN, 0), upsample(thick, scale, THIN_TO_THIN, 0)
    assert flow.shape == spline.shape == (n_thin, 48, 48) and flow.dtype == np.float32
    gain = psnr(flow, truth[:n_thin], 1.0) - psnr(spline, truth[:n_thin], 1.0)
    assert gain > 10.0, gain  # the disc moves 1.8-3.6 voxels between thick slices: ~20-36 dB
    np.testing.assert_array_equal(flow[::scale], thick)  # the measured slices, as measured


def test_a_range_of_thin_slices_is_that_range_of_the_whole_and_any_axis_works():
    thick = moving_disc()[::4]
    whole = flow_upsample(thick, 4, THIN_TO_THIN, 0)
    np.testing.assert_array_equal(flow_upsample(thick, 4, THIN_TO_THIN, 0, slice(5, 19)), whole[5:19])
    along_last = flow_upsample(np.moveaxis(thick, 0, 2), 4, THIN_TO_THIN, 2)
    np.testing.assert_allclose(np.moveaxis(along_last, 2, 0), whole, atol=1e-6)


def test_fractional_scales_and_thin_to_thick_positions():
    thick = moving_disc()[::3]
    assert flow_upsample(thick, 2.5, THIN_TO_THIN, 0).shape[0] == upsampled_length(len(thick), 2.5, THIN_TO_THIN)
    thin = flow_upsample(thick, 3, THIN_TO_THICK, 0)
    assert thin.shape[0] == upsampled_length(len(thick), 3, THIN_TO_THICK)
    np.testing.assert_array_equal(thin[0], thick[0])  # past the first thick slice: the nearest one
    np.testing.assert_array_equal(thin[1], thick[0])  # at it
    np.testing.assert_array_equal(thin[-1], thick[-1])


def test_a_still_volume_stays_itself_and_too_few_slices_are_refused():
    still = np.repeat(moving_disc(slices=1), 5, axis=0)
    np.testing.assert_allclose(flow_upsample(still, 3, THIN_TO_THIN, 0), np.repeat(still[:1], 13, axis=0),
                               atol=1e-4)
    with pytest.raises(VolumeShapeError, match="at least 2 slices"):
        flow_upsample(still[:1], 3, THIN_TO_THIN, 0)


def test_input_upsample_is_the_spline_or_the_flow_with_slab_means_restored_when_asked():
    thick = moving_disc()[::3]
    np.testing.assert_array_equal(input_upsample(thick, 3, THIN_TO_THIN, 0), upsample(thick, 3, THIN_TO_THIN, 0))
    np.testing.assert_array_equal(input_upsample(thick, 3, THIN_TO_THIN, 0, flow=True),
                                  flow_upsample(thick, 3, THIN_TO_THIN, 0))
    consistent = input_upsample(thick, 3, THIN_TO_THICK, 0, flow=True, consistent=True)
    means = slab_means_matrix(len(thick), len(consistent), 3)
    np.testing.assert_allclose(np.tensordot(means, consistent, axes=1), thick, atol=1e-5)


def growing_disc(slices=16, size=48):
    """A soft disc whose radius grows 0.8 voxels per slice: a flow that differs from pixel to pixel."""
    rows, columns = np.mgrid[:size, :size].astype(np.float32)
    distance = np.hypot(rows - size / 2, columns - size / 2)
    return np.stack([1 / (1 + np.exp(distance - (6.0 + 0.8 * k))) for k in range(slices)]).astype(np.float32)


@pytest.mark.parametrize("scale", [3, 5])
def test_the_intermediate_warp_is_symmetric_in_the_two_thick_slices_and_follows_motion(scale):
    """Reversed slices give the reversed result (the one-flow warp reads its flow at one slice's pixels and does
    not); on a moving disc it beats the spline as the one-flow warp does, measured slices kept."""
    thick = growing_disc()[::scale]
    both = {warp: (flow_upsample(thick, scale, THIN_TO_THIN, 0, warp=warp),
                   flow_upsample(thick[::-1], scale, THIN_TO_THIN, 0, warp=warp)[::-1]) for warp in WARPS}
    np.testing.assert_allclose(*both["intermediate"], atol=1e-5)
    assert np.abs(both["forward"][0] - both["forward"][1]).max() > 1e-4  # 2e-3 and 1e-2 here
    truth = moving_disc()
    moving = flow_upsample(truth[::scale], scale, THIN_TO_THIN, 0, warp="intermediate")
    spline = upsample(truth[::scale], scale, THIN_TO_THIN, 0)
    assert psnr(moving, truth[:len(moving)], 1.0) - psnr(spline, truth[:len(moving)], 1.0) > 10.0
    np.testing.assert_array_equal(moving[::scale], truth[::scale][:len(moving[::scale])])
    with pytest.raises(ValueError, match="unknown warp 'backward'"):
        flow_upsample(thick, scale, THIN_TO_THIN, 0, warp="backward")
