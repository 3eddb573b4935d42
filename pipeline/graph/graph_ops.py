"""In-graph TensorFlow twins of the NumPy operations, for SavedModels served without Python.

Each mirrors one NumPy definition and is tested against it: `upsample_tf` against
`pipeline.method.interpolation.upsample`, `robust_window_tf` against `pipeline.method.normalization.robust_window`,
`make_consistent_tf` against `pipeline.method.consistency.make_consistent`, `pad_edges_tf` against
`np.pad(..., mode="edge")`.
Shapes may be dynamic; everything is plain TF ops, so it exports and runs in TF Serving.
"""
from __future__ import annotations

import tensorflow as tf

from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.consistency import ON_GRID_TOLERANCE
from pipeline.method.geometry import first_position
from pipeline.method.normalization import HIGH_PERCENTILE, LOW_PERCENTILE

_EPS = 1e-9


def upsampled_positions_tf(n_lr: tf.Tensor, scale: float, criterion: str) -> tf.Tensor:
    """float64 LR-index coordinates of the upsampled slices (see `pipeline.method.geometry`)."""
    n = tf.cast(n_lr, tf.float64)
    first = first_position(scale, criterion)
    length = tf.floor(n * scale + _EPS) if criterion == THIN_TO_THICK else tf.floor((n - 1.0) * scale + _EPS) + 1.0
    return first + tf.range(length, dtype=tf.float64) / scale


def cubic_bspline_tf(t: tf.Tensor) -> tf.Tensor:
    """The centred cubic B-spline β3(t)."""
    t = tf.abs(t)
    inner = 2.0 / 3.0 - t * t + 0.5 * t * t * t
    outer = tf.pow(tf.maximum(2.0 - t, 0.0), 3) / 6.0
    return tf.where(t < 1.0, inner, outer)


def interpolation_matrix_tf(n_lr: tf.Tensor, scale: float, criterion: str) -> tf.Tensor:
    """(n_hr, n_lr) float64 matrix of the mirror-boundary interpolating cubic spline, built in-graph.

    M = W·B⁻¹: B maps spline coefficients to samples (tridiagonal, mirrored ends), W evaluates the
    spline at the output positions from the four nearest (mirror-folded) coefficients.
    """
    n = tf.cast(n_lr, tf.int32)
    tf.debugging.assert_greater_equal(n, 2, message="need at least 2 slices along the slice axis to interpolate")
    positions = upsampled_positions_tf(n, scale, criterion)
    period = 2 * (n - 1)
    base = tf.cast(tf.floor(positions), tf.int32)
    weights = tf.zeros([tf.size(positions), n], dtype=tf.float64)
    for offset in (-1, 0, 1, 2):
        tap = base + offset
        folded = tf.math.floormod(tap, period)
        folded = tf.where(folded > n - 1, period - folded, folded)
        weight = cubic_bspline_tf(positions - tf.cast(tap, tf.float64))
        weights += tf.one_hot(folded, n, dtype=tf.float64) * weight[:, None]
    rows = tf.range(n)
    sample_matrix = (
        tf.one_hot(rows, n, dtype=tf.float64) * (4.0 / 6.0)
        + tf.one_hot(tf.where(rows == n - 1, n - 2, rows + 1), n, dtype=tf.float64) / 6.0
        + tf.one_hot(tf.where(rows == 0, 1, rows - 1), n, dtype=tf.float64) / 6.0
    )
    return tf.transpose(tf.linalg.solve(tf.transpose(sample_matrix), tf.transpose(weights)))


def upsample_tf(volume: tf.Tensor, scale: float, criterion: str, axis: int) -> tf.Tensor:
    """Cubic-spline upsample a float32 tensor of any rank along `axis` (static axis, dynamic sizes)."""
    volume = tf.convert_to_tensor(volume, dtype=tf.float32)
    rank = volume.shape.rank
    axis = axis % rank
    matrix = tf.cast(interpolation_matrix_tf(tf.shape(volume)[axis], scale, criterion), tf.float32)
    perm = [axis] + [i for i in range(rank) if i != axis]
    out = tf.tensordot(matrix, tf.transpose(volume, perm), axes=1)
    inverse = [perm.index(i) for i in range(rank)]
    return tf.transpose(out, inverse)


def pad_edges_tf(volume: tf.Tensor, pads: list[tuple[int, int]]) -> tf.Tensor:
    """Pad each axis by (before, after) copies of its edge values, as `np.pad(..., mode="edge")` (tf.pad has
    no such mode); any size ≥ 1 works, where SYMMETRIC/REFLECT need the axis longer than the padding."""
    for axis, (before, after) in enumerate(pads):
        if not (isinstance(before, int) and isinstance(after, int) and before == after == 0):  # tensors: always
            size = tf.shape(volume)[axis]
            volume = tf.gather(volume, tf.clip_by_value(tf.range(-before, size + after), 0, size - 1), axis=axis)
    return volume


def robust_window_tf(volume: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(low, high) float32 scalars: the same order statistics as `pipeline.method.normalization.robust_window`."""
    flat = tf.sort(tf.reshape(tf.cast(volume, tf.float32), [-1]))
    last = tf.cast(tf.size(flat) - 1, tf.float64)

    def order_statistic(percentile: float) -> tf.Tensor:
        return tf.gather(flat, tf.cast(tf.floor(percentile / 100.0 * last), tf.int32))

    return order_statistic(LOW_PERCENTILE), order_statistic(HIGH_PERCENTILE)


def normalize_tf(volume: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """Map [low, high] to [0, 1] linearly (width 1 for a constant volume), as `IntensityWindow.normalize`."""
    width = tf.where(high > low, high - low, tf.ones_like(high))
    return (tf.cast(volume, tf.float32) - low) / width


def denormalize_tf(volume: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """The exact inverse of `normalize_tf`."""
    width = tf.where(high > low, high - low, tf.ones_like(high))
    return tf.cast(volume, tf.float32) * width + low


def keep_measured_slices_tf(thin: tf.Tensor, thick: tf.Tensor, scale: float, criterion: str) -> tf.Tensor:
    """`thin` with the thin-to-thin slices that were measured (axis 0) replaced by the thick slices they are."""
    if criterion != THIN_TO_THIN:
        return thin
    thick_index = tf.range(tf.shape(thick)[0])
    positions = tf.cast(thick_index, tf.float64) * scale
    on_grid = tf.abs(positions - tf.round(positions)) < ON_GRID_TOLERANCE
    thin_index = tf.cast(tf.round(tf.boolean_mask(positions, on_grid)), tf.int32)
    measured = tf.gather(tf.cast(thick, thin.dtype), tf.boolean_mask(thick_index, on_grid))
    return tf.tensor_scatter_nd_update(thin, thin_index[:, None], measured)


def slab_means_matrix_tf(n_lr: tf.Tensor, n_hr: tf.Tensor, scale: float) -> tf.Tensor:
    """(n_lr, n_hr) float64 slab-mean weights, as `pipeline.method.consistency.slab_means_matrix`."""
    j = tf.range(n_hr, dtype=tf.float64)[None, :]
    k = tf.range(n_lr, dtype=tf.float64)[:, None]
    overlap = tf.maximum(tf.minimum(j + 1.0, (k + 1.0) * scale) - tf.maximum(j, k * scale), 0.0)
    return overlap / tf.reduce_sum(overlap, axis=1, keepdims=True)


def restore_slab_means_tf(thin: tf.Tensor, thick: tf.Tensor, scale: float, criterion: str) -> tf.Tensor:
    """`thin` (thin-to-thick, axis 0) with each slab's mean restored to its thick slice, as
    `pipeline.method.consistency.restore_slab_means`; other criteria unchanged."""
    if criterion != THIN_TO_THICK:
        return thin
    means = slab_means_matrix_tf(tf.shape(thick)[0], tf.shape(thin)[0], scale)
    spread = tf.transpose(tf.linalg.solve(tf.matmul(means, means, transpose_b=True), means))
    flat_thin = tf.reshape(tf.cast(thin, tf.float64), [tf.shape(thin)[0], -1])
    residual = tf.reshape(tf.cast(thick, tf.float64), [tf.shape(thick)[0], -1]) - tf.matmul(means, flat_thin)
    return thin + tf.cast(tf.reshape(tf.matmul(spread, residual), tf.shape(thin)), thin.dtype)


def make_consistent_tf(thin: tf.Tensor, thick: tf.Tensor, scale: float, criterion: str) -> tf.Tensor:
    """`thin` made to agree with `thick` along axis 0 as its criterion defines (`pipeline.method.consistency`)."""
    return restore_slab_means_tf(keep_measured_slices_tf(thin, thick, scale, criterion), thick, scale, criterion)
