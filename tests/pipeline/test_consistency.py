"""Data consistency, NumPy and in-graph alike: thin-to-thin's measured thin slices come out as measured,
thin-to-thick's slabs average back to their thick slices with the smallest change, gaussian is left alone."""
import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import GAUSSIAN, THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.consistency import (keep_measured_slices, make_consistent, measured_slices, restore_slab_means,
                                  slab_means_matrix)
from pipeline.method.degradation import degrade
from pipeline.method.geometry import upsampled_length, upsampled_positions
from pipeline.graph.graph_ops import make_consistent_tf

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("scale, thin, thick", [
    (2, [0, 2, 4, 6, 8], [0, 1, 2, 3, 4]),
    (2.5, [0, 5, 10], [0, 2, 4]),
    (3, [0, 3, 6, 9, 12], [0, 1, 2, 3, 4]),
])
def test_measured_slices_are_the_thick_slices_on_the_thin_grid(scale, thin, thick):
    thin_index, thick_index = measured_slices(5, scale, THIN_TO_THIN)
    assert thin_index.tolist() == thin and thick_index.tolist() == thick
    # each sits where pipeline.method.geometry puts that thick slice, inside the upsampled grid
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


def test_slab_means_matrix_is_the_box_average_and_splits_boundary_slices_at_fractional_scales():
    thin = RNG.random((13, 4)).astype(np.float32)
    np.testing.assert_allclose(slab_means_matrix(4, 12, 3) @ thin[:12], degrade(thin[:12], 3, THIN_TO_THICK, axis=0),
                               rtol=1e-6)
    means = slab_means_matrix(5, 12, 2.5)  # slabs [0, 2.5), [2.5, 5), ..., the last cut at 12
    np.testing.assert_allclose(means[0, :3], [0.4, 0.4, 0.2])
    np.testing.assert_allclose(means[1, 2:5], [0.2, 0.4, 0.4])
    np.testing.assert_allclose(means[4, 10:], [0.5, 0.5])
    np.testing.assert_allclose(means.sum(axis=1), 1.0)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("scale", [2, 3, 2.5])
def test_restored_slabs_average_back_to_the_thick_slices_along_any_axis(axis, scale):
    shape = [5, 6, 7]
    n_lr = shape[axis]
    thick = RNG.random(shape).astype(np.float32)
    shape[axis] = upsampled_length(n_lr, scale, THIN_TO_THICK)
    thin = RNG.random(shape).astype(np.float32)
    restored = restore_slab_means(thin.copy(), thick, scale, THIN_TO_THICK, axis)
    means = np.moveaxis(np.tensordot(slab_means_matrix(n_lr, shape[axis], scale), np.moveaxis(restored, axis, 0), 1),
                        0, axis)
    np.testing.assert_allclose(means, thick, atol=1e-6)
    assert np.abs(restored - thin).max() > 0.1  # random slabs were far from their means


def test_the_change_is_the_smallest_one_each_slabs_residual_spread_evenly_over_it():
    thin = RNG.random((12, 3, 2)).astype(np.float32)
    thick = RNG.random((4, 3, 2)).astype(np.float32)
    restored = restore_slab_means(thin.copy(), thick, 3, THIN_TO_THICK, axis=0)
    change = (restored - thin).reshape(4, 3, 3, 2)  # (slab, slice in it, ...)
    residual = thick - thin.reshape(4, 3, 3, 2).mean(axis=1)
    np.testing.assert_allclose(change, np.broadcast_to(residual[:, None], change.shape), atol=1e-6)


def test_a_consistent_volume_is_left_as_it_is_and_other_criteria_untouched():
    thin = RNG.random((12, 4, 5)).astype(np.float32)
    thick = degrade(thin, 3, THIN_TO_THICK, axis=0)
    np.testing.assert_allclose(restore_slab_means(thin.copy(), thick, 3, THIN_TO_THICK, 0), thin, atol=1e-6)
    for criterion in (THIN_TO_THIN, GAUSSIAN):
        np.testing.assert_array_equal(restore_slab_means(thin.copy(), RNG.random((4, 4, 5)), 3, criterion, 0), thin)
    np.testing.assert_array_equal(make_consistent(thin.copy(), RNG.random((4, 4, 5)), 3, GAUSSIAN, 0), thin)


def test_large_volumes_are_corrected_in_blocks_without_a_float64_copy(monkeypatch):
    import pipeline.method.consistency as consistency

    monkeypatch.setattr(consistency, "COLUMNS_PER_BLOCK", 7)  # 20 in-plane voxels: three blocks, the last short
    thin = RNG.random((4, 5, 12)).astype(np.float32)
    thick = RNG.random((4, 5, 3)).astype(np.float32)
    restored = restore_slab_means(thin.copy(), thick, 4, THIN_TO_THICK, axis=2)
    assert restored.dtype == np.float32
    np.testing.assert_allclose(degrade(restored, 4, THIN_TO_THICK, axis=2), thick, atol=1e-6)


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK, GAUSSIAN])
@pytest.mark.parametrize("scale", [2, 2.5, 6])
def test_in_graph_twin_equals_numpy_with_dynamic_shapes(criterion, scale):
    thick = RNG.random((7, 5, 4)).astype(np.float32)
    thin = RNG.random((upsampled_length(7, scale, criterion), 5, 4)).astype(np.float32)
    expected = make_consistent(thin.copy(), thick, scale, criterion, axis=0)
    graph = tf.function(lambda a, b: make_consistent_tf(a, b, scale, criterion),
                        input_signature=[tf.TensorSpec([None, None, None], tf.float32)] * 2)
    served = graph(tf.constant(thin), tf.constant(thick)).numpy()
    if criterion == THIN_TO_THICK:  # a float64 solve on both sides, summed in another order
        np.testing.assert_allclose(served, expected, atol=1e-6)
    else:  # slices copied as they are: exactly
        np.testing.assert_array_equal(served, expected)
