import numpy as np
import pytest
import tensorflow as tf

from pipeline.graph.graph_ops import denormalize_tf, normalize_tf, robust_window_tf
from pipeline.method.normalization import IntensityWindow, percentile_rank, robust_window


def ct_like(seed=0):
    """Hounsfield-unit volume: air outside, soft tissue, a little bone."""
    rng = np.random.default_rng(seed)
    volume = np.full((40, 40, 30), -1024.0)
    volume[8:32, 8:32, 5:25] = rng.normal(40, 20, size=(24, 24, 20))
    volume[15:20, 15:20, 10:15] = rng.normal(1200, 200, size=(5, 5, 5))
    return volume.astype(np.float32)


@pytest.mark.parametrize("make", [ct_like, lambda: np.random.default_rng(1).gamma(2.0, 300.0, (33, 29, 21)).astype(np.float32)])
def test_window_is_the_lower_order_statistic(make):
    volume = make()
    window = robust_window(volume)
    low, high = np.percentile(volume, [0.5, 99.5], method="lower")
    assert (window.low, window.high) == (low, high)
    normalized = window.normalize(volume)
    n = volume.size  # at most the voxels ranked below / above the two order statistics fall outside [0, 1]
    assert np.count_nonzero(normalized < 0) <= percentile_rank(n, 0.5)
    assert np.count_nonzero(normalized > 1) <= n - 1 - percentile_rank(n, 99.5)


def test_round_trip_restores_hounsfield_units():
    volume = ct_like()
    window = robust_window(volume)
    back = window.denormalize(window.normalize(volume))
    # exact up to float32 rounding: within one ulp of the largest magnitude
    assert np.abs(back - volume).max() <= np.spacing(np.float32(np.abs(volume).max()))
    assert np.count_nonzero(back == -1024) == np.count_nonzero(volume == -1024)


def test_constant_volume_stays_finite_and_invertible():
    window = robust_window(np.full((5, 5, 5), 7.0, np.float32))
    assert window == IntensityWindow(7.0, 7.0) and window.width == 1.0
    np.testing.assert_array_equal(window.denormalize(window.normalize(np.full(3, 7.0))), np.full(3, 7.0))


def test_in_graph_window_and_normalisation_match_numpy():
    volume = ct_like(3)
    window = robust_window(volume)
    low, high = robust_window_tf(tf.constant(volume))
    assert (float(low), float(high)) == (window.low, window.high)
    normalized = normalize_tf(volume, low, high)
    np.testing.assert_allclose(normalized.numpy(), window.normalize(volume), atol=1e-6)
    np.testing.assert_allclose(denormalize_tf(normalized, low, high).numpy(), volume, atol=1e-3)
