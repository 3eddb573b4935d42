"""In-graph TensorFlow twin of `pipeline.method.slice_flow`: the flow-guided slice interpolation a `flow_input`
generator takes, for SavedModels served without Python (and without scikit-image).

`tvl1_flow_tf` follows `skimage.registration.optical_flow_tvl1` (0.24–0.26) step for step, with the options
of `slice_flow.FLOW_OPTIONS`: its image pyramid (Gaussian σ = 2/3 with reflected edges, then bilinear
resizing to ceil(n/2) while the smaller side exceeds 32, at most 10 levels), nearest-neighbour flow
upscaling, bilinear warps with clamped edges, `np.gradient`, the thresholded data step and two dual TV
iterations per component, and its early stop (the squared change since the first data step of a warp under
1e-4 per pixel). `flow_upsample_tf` then warps cubic B-spline coefficients ('nearest' mode: reflected
prefilter ends, clamped taps) as `slice_flow.flow_upsample` does. Tested against both (`tests/pipeline`).
Pairs of slices and thin slices run through `tf.map_fn`, so memory stays a few slices whatever the volume.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipeline.graph.graph_ops import cubic_bspline_tf, upsampled_positions_tf
from pipeline.method.slice_flow import FLOW_OPTIONS, MEASURED_TOLERANCE

ATTACHMENT, TIGHTNESS, TOLERANCE = 15.0, 0.3, 1e-4  # optical_flow_tvl1's defaults, which slice_flow keeps
TIME_STEP, TV_ITERATIONS = 0.25, 2  # its dt = 0.5 / ndim for 2-D images and reg_num_iter
PYRAMID_MIN_SIZE, PYRAMID_LEVELS = 16, 10  # _coarse_to_fine's min_size (×2 downscale) and nlevel
PARALLEL_SLICES = 4  # pairs of thick slices, then thin slices, in flight at once in tf.map_fn


def _gaussian_taps(sigma: float = 2.0 / 3.0, truncate: float = 4.0) -> np.ndarray:
    """The taps of `scipy.ndimage.gaussian_filter1d` for pyramid_reduce's σ = 2·downscale/6."""
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


_GAUSSIAN = _gaussian_taps()


def _smooth(images: tf.Tensor) -> tf.Tensor:
    """[N, h, w] Gaussian-smoothed along both axes with reflected ('symmetric') edges."""
    radius = len(_GAUSSIAN) // 2
    padded = tf.pad(images[..., None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    taps = tf.constant(_GAUSSIAN)
    rows = tf.nn.conv2d(padded, tf.reshape(taps, [-1, 1, 1, 1]), strides=1, padding="VALID")
    return tf.nn.conv2d(rows, tf.reshape(taps, [1, -1, 1, 1]), strides=1, padding="VALID")[..., 0]


def _linear_resize_axis(images: tf.Tensor, size: tf.Tensor, axis: int) -> tf.Tensor:
    """Linear resampling of one axis to `size` samples on the pixel-area grid (scipy's zoom, grid_mode=True)."""
    length = tf.shape(images)[axis]
    ratio = tf.cast(length, tf.float64) / tf.cast(size, tf.float64)
    position = tf.clip_by_value((tf.range(size, dtype=tf.float64) + 0.5) * ratio - 0.5, 0.0,
                                tf.cast(length - 1, tf.float64))
    lower = tf.cast(tf.floor(position), tf.int32)
    upper = tf.minimum(lower + 1, length - 1)
    weight = tf.cast(position - tf.cast(lower, tf.float64), tf.float32)
    weight = tf.reshape(weight, [-1] + [1] * (images.shape.rank - 1 - axis))
    return (1.0 - weight) * tf.gather(images, lower, axis=axis) + weight * tf.gather(images, upper, axis=axis)


def _reduce(images: tf.Tensor) -> tf.Tensor:
    """One pyramid step, as `skimage.transform.pyramid_reduce(downscale=2)`: smooth, then resize to ceil(n/2)."""
    smoothed = _smooth(images)
    shape = tf.shape(images)
    half = (shape[1:] + 1) // 2
    return _linear_resize_axis(_linear_resize_axis(smoothed, half[0], 1), half[1], 2)


def _pyramid(images: tf.Tensor) -> tf.TensorArray:
    """Finest-first levels of a [2, H, W] image pair, reduced while the smaller side exceeds 2 × 16."""
    levels = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                            element_shape=tf.TensorShape([2, None, None]))
    levels = levels.write(0, images)

    def more(count, level, _):
        return tf.logical_and(count < PYRAMID_LEVELS, tf.reduce_min(tf.shape(level)[1:]) > 2 * PYRAMID_MIN_SIZE)

    def step(count, level, levels):
        level = _reduce(level)
        return count + 1, level, levels.write(count, level)

    _, _, levels = tf.while_loop(more, step, [tf.constant(1), images, levels],
                                 shape_invariants=[tf.TensorShape([]), tf.TensorShape([2, None, None]),
                                                   tf.TensorShape(None)])
    return levels


def _nearest_resize_axis(flow: tf.Tensor, size: tf.Tensor, axis: int) -> tf.Tensor:
    """Nearest-neighbour resampling of one axis with corner-aligned samples (scipy's zoom, order 0)."""
    length = tf.shape(flow)[axis]
    ratio = tf.cast(length - 1, tf.float64) / tf.cast(size - 1, tf.float64)
    index = tf.cast(tf.floor(tf.range(size, dtype=tf.float64) * ratio + 0.5), tf.int32)
    return tf.gather(flow, tf.clip_by_value(index, 0, length - 1), axis=axis)


def _resize_flow(flow: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """A [2, h, w] flow on a finer [H, W] grid, its vectors scaled by the size ratios (skimage's _resize_flow)."""
    old = tf.shape(flow)[1:]
    resized = _nearest_resize_axis(_nearest_resize_axis(flow, shape[0], 1), shape[1], 2)
    factors = tf.cast(tf.cast(shape, tf.float64) / tf.cast(old, tf.float64), tf.float32)
    return resized * factors[:, None, None]


def _bilinear_warp(image: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
    """image [h, w] sampled bilinearly at (rows, columns), coordinates clamped to the image (mode 'edge')."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    rows = tf.clip_by_value(rows, 0.0, tf.cast(height - 1, tf.float32))
    columns = tf.clip_by_value(columns, 0.0, tf.cast(width - 1, tf.float32))
    row0, column0 = tf.floor(rows), tf.floor(columns)
    dy, dx = rows - row0, columns - column0
    row0, column0 = tf.cast(row0, tf.int32), tf.cast(column0, tf.int32)
    row1, column1 = tf.minimum(row0 + 1, height - 1), tf.minimum(column0 + 1, width - 1)
    flat = tf.reshape(image, [-1])

    def at(r, c):
        return tf.gather(flat, r * width + c)

    top = (1.0 - dx) * at(row0, column0) + dx * at(row0, column1)
    bottom = (1.0 - dx) * at(row1, column0) + dx * at(row1, column1)
    return (1.0 - dy) * top + dy * bottom


def _gradient(image: tf.Tensor) -> tf.Tensor:
    """[2, h, w] as `np.gradient`: central differences inside, one-sided at the edges."""
    def along(axis: int) -> tf.Tensor:
        first = tf.gather(image, [1], axis=axis) - tf.gather(image, [0], axis=axis)
        n = tf.shape(image)[axis]
        inner = (tf.gather(image, tf.range(2, n), axis=axis) - tf.gather(image, tf.range(0, n - 2), axis=axis)) / 2.0
        last = tf.gather(image, [n - 1], axis=axis) - tf.gather(image, [n - 2], axis=axis)
        return tf.concat([first, inner, last], axis=axis)

    return tf.stack([along(0), along(1)])


def _forward_differences(u: tf.Tensor) -> tf.Tensor:
    """[2, h, w] forward differences of u [h, w], zero on the last row / column."""
    rows = tf.pad(u[1:] - u[:-1], [[0, 1], [0, 0]])
    columns = tf.pad(u[:, 1:] - u[:, :-1], [[0, 0], [0, 1]])
    return tf.stack([rows, columns])


def _negative_divergence(p: tf.Tensor) -> tf.Tensor:
    """skimage's d: −(p_r + p_c) plus each component shifted one step along its own axis."""
    return (-(p[0] + p[1]) + tf.pad(p[0][:-1], [[1, 0], [0, 0]])
            + tf.pad(p[1][:, :-1], [[0, 0], [1, 0]]))


def _tvl1_level(reference: tf.Tensor, moving: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """skimage's `_tvl1` at one pyramid level: `num_warp` warps of `num_iter` data + TV iterations each."""
    shape = tf.shape(reference)
    rows = tf.range(shape[0], dtype=tf.float32)[:, None]
    columns = tf.range(shape[1], dtype=tf.float32)[None, :]
    data_weight = ATTACHMENT * TIGHTNESS
    tv_weight = TIME_STEP / TIGHTNESS
    tolerance = TOLERANCE * tf.cast(tf.size(reference), tf.float32)

    def warp(count, flow, projection, _):
        warped = _bilinear_warp(moving, rows + flow[0], columns + flow[1])
        gradient = _gradient(warped)
        norm = tf.reduce_sum(gradient * gradient, axis=0)
        norm = tf.where(norm == 0.0, tf.ones_like(norm), norm)
        rho_0 = warped - reference - tf.reduce_sum(gradient * flow, axis=0)
        first_step = None
        for _ in range(FLOW_OPTIONS["num_iter"]):
            rho = rho_0 + tf.reduce_sum(gradient * flow, axis=0)
            near = tf.abs(rho) <= data_weight * norm
            auxiliary = tf.where(near, flow - rho * gradient / norm, flow - data_weight * tf.sign(rho) * gradient)
            first_step = auxiliary if first_step is None else first_step  # skimage aliases its "previous" flow
            components, projections = [], []
            for component in range(2):
                u, p = auxiliary[component], projection[component]
                for _ in range(TV_ITERATIONS):
                    differences = _forward_differences(u)
                    scale = 1.0 + tv_weight * tf.sqrt(tf.reduce_sum(differences * differences, axis=0))
                    p = (p - TIME_STEP * differences) / scale
                    u = auxiliary[component] + _negative_divergence(p)
                components.append(u)
                projections.append(p)
            flow, projection = tf.stack(components), tf.stack(projections)
        change = first_step - flow
        return count + 1, flow, projection, tf.reduce_sum(change * change) < tolerance

    def go_on(count, flow, projection, converged):
        return tf.logical_and(count < FLOW_OPTIONS["num_warp"], tf.logical_not(converged))

    projection = tf.zeros([2, 2, shape[0], shape[1]], tf.float32)
    _, flow, _, _ = tf.while_loop(go_on, warp, [tf.constant(0), flow, projection, tf.constant(False)])
    return flow


def tvl1_flow_tf(reference: tf.Tensor, moving: tf.Tensor) -> tf.Tensor:
    """The in-plane flow v [2, H, W] with reference(x) ≈ moving(x + v(x)), as `slice_flow.slice_flow`."""
    levels = _pyramid(tf.stack([tf.cast(reference, tf.float32), tf.cast(moving, tf.float32)]))
    coarsest = levels.read(levels.size() - 1)
    flow = _tvl1_level(coarsest[0], coarsest[1], tf.zeros([2, tf.shape(coarsest)[1], tf.shape(coarsest)[2]]))

    def finer(index, flow):
        images = levels.read(index)
        return index - 1, _tvl1_level(images[0], images[1], _resize_flow(flow, tf.shape(images)[1:]))

    _, flow = tf.while_loop(lambda index, _: index >= 0, finer, [levels.size() - 2, flow],
                            shape_invariants=[tf.TensorShape([]), tf.TensorShape([2, None, None])])
    return tf.ensure_shape(flow, [2, None, None])


def spline_prefilter_matrix_tf(n: tf.Tensor) -> tf.Tensor:
    """(n, n) float32 cubic B-spline prefilter with reflected ends, as `ndimage.spline_filter1d(mode="nearest")`:
    the inverse of the sampling matrix (1, 4, 1)/6 whose end rows carry the mirrored coefficient (5, 1)/6."""
    rows = tf.range(n)
    sampling = (tf.one_hot(rows, n, dtype=tf.float64) * (4.0 / 6.0)
                + tf.one_hot(tf.maximum(rows - 1, 0), n, dtype=tf.float64) / 6.0
                + tf.one_hot(tf.minimum(rows + 1, n - 1), n, dtype=tf.float64) / 6.0)
    return tf.cast(tf.linalg.inv(sampling), tf.float32)


def _cubic_taps(position: tf.Tensor, length: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The four tap indices (clamped to the axis) and cubic B-spline weights at each position, [..., 4]."""
    base = tf.floor(position)
    offsets = tf.constant([-1.0, 0.0, 1.0, 2.0])
    taps = base[..., None] + offsets
    return tf.clip_by_value(tf.cast(taps, tf.int32), 0, length - 1), cubic_bspline_tf(position[..., None] - taps)


def cubic_warp_tf(coefficients: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
    """Cubic B-spline coefficients [H, W] evaluated at (rows, columns) [H, W]: `ndimage.map_coordinates(order=3,
    mode="nearest", prefilter=False)`, taps past an edge repeating the edge coefficient."""
    height, width = tf.shape(coefficients)[0], tf.shape(coefficients)[1]
    row_taps, row_weights = _cubic_taps(rows, height)
    column_taps, column_weights = _cubic_taps(columns, width)
    index = row_taps[..., :, None] * width + column_taps[..., None, :]
    values = tf.gather(tf.reshape(coefficients, [-1]), index)
    return tf.einsum("hwij,hwi,hwj->hw", values, row_weights, column_weights)


def flow_upsample_tf(volume: tf.Tensor, scale: float, criterion: str) -> tf.Tensor:
    """Flow-guided upsampling of a normalised [Z, H, W] volume along axis 0, as `slice_flow.flow_upsample`."""
    volume = tf.convert_to_tensor(volume, tf.float32)
    shape = tf.shape(volume)
    n_lr = shape[0]
    tf.debugging.assert_greater_equal(n_lr, 2, message="flow-guided interpolation needs at least 2 slices")
    positions = tf.clip_by_value(upsampled_positions_tf(n_lr, scale, criterion), 0.0, tf.cast(n_lr - 1, tf.float64))
    lower = tf.minimum(tf.cast(tf.floor(positions), tf.int32), n_lr - 2)
    fractions = positions - tf.cast(lower, tf.float64)
    flows = tf.map_fn(lambda k: tvl1_flow_tf(volume[k], volume[k + 1]), tf.range(n_lr - 1),
                      fn_output_signature=tf.TensorSpec([2, None, None], tf.float32),
                      parallel_iterations=PARALLEL_SLICES)
    row_filter, column_filter = spline_prefilter_matrix_tf(shape[1]), spline_prefilter_matrix_tf(shape[2])
    coefficients = tf.einsum("hi,zij,wj->zhw", row_filter, volume, column_filter)
    rows = tf.range(shape[1], dtype=tf.float32)[:, None] + tf.zeros([1, shape[2]])
    columns = tf.range(shape[2], dtype=tf.float32)[None, :] + tf.zeros([shape[1], 1])

    def thin_slice(index):
        k, t = lower[index], fractions[index]
        measured = tf.logical_or(t < MEASURED_TOLERANCE, t > 1.0 - MEASURED_TOLERANCE)

        def warped():
            v, weight = flows[k], tf.cast(t, tf.float32)
            first = cubic_warp_tf(coefficients[k], rows - weight * v[0], columns - weight * v[1])
            second = cubic_warp_tf(coefficients[k + 1], rows + (1.0 - weight) * v[0], columns + (1.0 - weight) * v[1])
            return (1.0 - weight) * first + weight * second

        return tf.cond(measured, lambda: volume[k + tf.cast(tf.round(t), tf.int32)], warped)

    return tf.map_fn(thin_slice, tf.range(tf.size(positions)), fn_output_signature=tf.TensorSpec([None, None],
                     tf.float32), parallel_iterations=PARALLEL_SLICES)
