"""Thin-to-thin data consistency: the measured thin slices come out as measured, NumPy and in-graph alike."""
import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import GAUSSIAN, THIN_TO_THICK, THIN_TO_THIN
from pipeline.consistency import keep_measured_slices, measured_slices
from pipeline.geometry import upsampled_length, upsampled_positions
from pipeline.graph_ops import keep_measured_slices_tf

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("scale, thin, thick", [
    (2, [0, 2, 4, 6, 8], [0, 1, 2, 3, 4]),
    (2.5, [0, 5, 10], [0, 2, 4]),
    (3, [0, 3, 6, 9, 12], [0, 1, 2, 3, 4]),
])
def test_measured_slices_are_the_thick_slices_on_the_thin_grid(scale, thin, thick):
    thin_index, thick_index = measured_slices(5, scale, THIN_TO_THIN)
    assert thin_index.tolist() == thin and thick_index.tolist() == thick
    # each sits where pipeline.geometry puts that thick slice, inside the upsampled grid
    assert thin_index.max() < upsampled_length(5, scale, THIN_TO_THIN)
    np.testing.assert_allclose(upsampled_positions(5, scale, THIN_TO_THIN)[thin_index], thick_index)


@pytest.mark.parametrize("criterion", [THIN_TO_THICK, GAUSSIAN])
def test_averaged_or_blurred_thick_slices_are_never_kept(criterion):
    thin = RNG.random((12, 3, 3))
    before = thin.copy()
    assert all(index.size == 0 for index in measured_slices(5, 2, criterion))
    np.testing.assert_array_equal(keep_measured_slices(thin, RNG.random((5, 3, 3)), 2, criterion, 0), before)


def test_keeps_the_measured_slices_along_any_axis_and_nothing_else():
    thick = RNG.random((4, 6, 5)).astype(np.float32)
    thin = RNG.random((4, 6, 11)).astype(np.float32)  # (5 - 1) * 2.5 + 1 thin slices along axis 2
    before = thin.copy()
    keep_measured_slices(thin, thick, 2.5, THIN_TO_THIN, axis=2)
    np.testing.assert_array_equal(thin[..., [0, 5, 10]], thick[..., [0, 2, 4]])
    others = [j for j in range(11) if j not in (0, 5, 10)]
    np.testing.assert_array_equal(thin[..., others], before[..., others])


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
@pytest.mark.parametrize("scale", [2, 2.5, 6])
def test_in_graph_twin_equals_numpy_with_dynamic_shapes(criterion, scale):
    thick = RNG.random((7, 5, 4)).astype(np.float32)
    thin = RNG.random((upsampled_length(7, scale, criterion), 5, 4)).astype(np.float32)
    expected = keep_measured_slices(thin.copy(), thick, scale, criterion, axis=0)
    graph = tf.function(lambda a, b: keep_measured_slices_tf(a, b, scale, criterion),
                        input_signature=[tf.TensorSpec([None, None, None], tf.float32)] * 2)
    np.testing.assert_array_equal(graph(tf.constant(thin), tf.constant(thick)).numpy(), expected)
