"""Cubic spline interpolation along the slice axis, LR grid to HR grid (the network's pre-upsampling).

The definition: the interpolating cubic B-spline with mirror boundaries, exactly scipy.ndimage's
order-3 spline in mode 'mirror', sampled at the positions of `pipeline.method.geometry`. Computed as SciPy's
recursive prefilter (`spline_filter1d`, float64) followed by a fixed-order sum of the four B-spline taps,
so the result is bit-identical whatever the BLAS or thread count (a dense GEMM is not: OpenBLAS changes
its float32 rounding with the number of threads, and shards must not). `pipeline.graph.graph_ops.upsample_tf`
is the in-graph twin used in serving.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.method.geometry import upsampled_affine, upsampled_positions
from pipeline.volume import Volume


def cubic_bspline(t: np.ndarray) -> np.ndarray:
    """The centred cubic B-spline β3(t)."""
    t = np.abs(t)
    return np.where(t < 1, 2.0 / 3.0 - t * t + 0.5 * t**3, np.maximum(2.0 - t, 0.0) ** 3 / 6.0)


def spline_taps(n_lr: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, m) mirror-folded coefficient indices and (4, m) weights of the taps around each position."""
    base = np.floor(positions).astype(np.int64)
    taps = base[None, :] + np.arange(-1, 3)[:, None]
    weights = cubic_bspline(positions[None, :] - taps)
    period = 2 * (n_lr - 1)
    folded = np.mod(taps, period)
    return np.where(folded > n_lr - 1, period - folded, folded), weights


def upsample(data: np.ndarray, scale: float, criterion: str, axis: int) -> np.ndarray:
    """Cubic-spline upsample `data` along `axis` by `scale` (float32 out, computed in float64)."""
    moved = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    n_lr = moved.shape[0]
    taps, weights = spline_taps(n_lr, upsampled_positions(n_lr, scale, criterion))
    coefficients = ndimage.spline_filter1d(moved, order=3, axis=0, mode="mirror", output=np.float64)
    expand = (slice(None),) + (None,) * (moved.ndim - 1)
    out = weights[0][expand] * coefficients[taps[0]]
    for k in range(1, 4):
        out += weights[k][expand] * coefficients[taps[k]]
    return np.ascontiguousarray(np.moveaxis(out.astype(np.float32), 0, axis))


def upsample_volume(volume: Volume, scale: float, criterion: str, axis: int | None = None) -> Volume:
    """Upsample a thick-slice volume along its slice axis, with the affine that places each thin slice."""
    axis = volume.slice_axis(axis)
    return volume.with_data(
        upsample(volume.data, scale, criterion, axis), upsampled_affine(volume.affine, axis, scale, criterion)
    )
