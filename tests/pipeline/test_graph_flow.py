"""The in-graph flow-guided interpolation against its NumPy definition: each step against scikit-image and SciPy
(pyramid, flow resizing, warps, prefilter), TV-L1 against `optical_flow_tvl1` with one to three pyramid levels,
and the whole interpolation against `slice_flow.flow_upsample`, measured slices exact."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage
from skimage.registration._optical_flow_utils import _get_pyramid, _resize_flow

from pipeline.graph import graph_flow
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.geometry import upsampled_positions
from pipeline.method.slice_flow import flow_upsample, slice_flow


def drifting_texture(slices: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Slices of a smooth random texture that drifts (0.7, −0.4) voxels and swells a little per slice, in
    normalised intensities: flow that TV-L1 has to find at every pyramid level."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.normal(size=shape), 3.0)
    base = (base - base.min()) / np.ptp(base)
    centre = np.array(shape, float)[:, None, None] / 2
    grid = np.mgrid[:shape[0], :shape[1]].astype(float)
    stack = [ndimage.map_coordinates(base, centre + (grid - centre) / (1 + 0.01 * k) - np.array([0.7, -0.4])[:, None, None] * k,
                                     order=3, mode="nearest") for k in range(slices)]
    return np.stack(stack).astype(np.float32)


@pytest.mark.parametrize("shape", [(40, 60), (70, 90), (33, 130)])
def test_the_pyramid_and_the_flow_resizing_are_scikit_images(shape):
    image = drifting_texture(1, shape)[0]
    expected = _get_pyramid(image, 2.0, 10, 16)[::-1]  # scikit-image lists the coarsest first
    levels = graph_flow._pyramid(tf.stack([image, image]))
    assert int(levels.size()) == len(expected)
    for index, level in enumerate(expected):
        np.testing.assert_allclose(levels.read(index).numpy()[1], level, atol=1e-6)
    flow = np.random.default_rng(1).normal(size=(2, *expected[-1].shape)).astype(np.float32)
    np.testing.assert_array_equal(graph_flow._resize_flow(tf.constant(flow), tf.constant(shape)).numpy(),
                                  _resize_flow(flow, shape))


def test_the_cubic_warp_is_scipys_map_coordinates_with_nearest_ends():
    rng = np.random.default_rng(2)
    image = rng.normal(size=(21, 34)).astype(np.float32)
    coefficients = ndimage.spline_filter(image, order=3, mode="nearest")
    prefiltered = tf.einsum("hi,ij,wj->hw", graph_flow.spline_prefilter_matrix_tf(21), image,
                            graph_flow.spline_prefilter_matrix_tf(34)).numpy()
    np.testing.assert_allclose(prefiltered, coefficients, atol=1e-5)
    rows = rng.uniform(-4, 25, image.shape).astype(np.float32)  # some well past the edges
    columns = rng.uniform(-4, 38, image.shape).astype(np.float32)
    expected = ndimage.map_coordinates(coefficients, [rows, columns], order=3, mode="nearest", prefilter=False)
    np.testing.assert_allclose(graph_flow.cubic_warp_tf(tf.constant(coefficients, tf.float32), rows, columns).numpy(),
                               expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(30, 44), (70, 90), (140, 132)])
def test_tvl1_flow_is_scikit_images_at_one_to_three_pyramid_levels(shape):
    first, second = drifting_texture(5, shape)[[0, 4]]
    expected = slice_flow(first, second)
    flow = tf.function(graph_flow.tvl1_flow_tf)(first, second).numpy()
    assert np.abs(expected).max() > 1.0  # a real flow: ~2.8 and 1.6 voxels of drift
    np.testing.assert_allclose(flow, expected, atol=2e-3)


@pytest.mark.parametrize("criterion, scale", [(THIN_TO_THIN, 3.0), (THIN_TO_THIN, 2.5), (THIN_TO_THICK, 4.0)])
def test_flow_upsample_tf_is_the_numpy_interpolation(criterion, scale):
    thick = drifting_texture(21, (72, 66))[::3]
    expected = flow_upsample(thick, scale, criterion, 0)
    got = tf.function(lambda volume: graph_flow.flow_upsample_tf(volume, scale, criterion))(thick).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3)
    positions = np.clip(upsampled_positions(len(thick), scale, criterion), 0, len(thick) - 1)
    measured = positions == np.round(positions)  # on a thick slice, or past the outer ones (thin-to-thick)
    assert measured.sum() >= 2
    np.testing.assert_array_equal(got[measured], thick[np.round(positions[measured]).astype(int)])


def test_one_slice_is_refused_in_the_graph():
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 2 slices"):
        graph_flow.flow_upsample_tf(np.zeros((1, 8, 8), np.float32), 3.0, THIN_TO_THIN)
