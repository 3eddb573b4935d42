"""Cubic spline interpolation along the slice axis, LR grid to HR grid (the network's pre-upsampling).

The definition: the interpolating cubic B-spline with mirror boundaries, exactly scipy.ndimage's
order-3 spline in mode 'mirror', sampled at the positions of `pipeline.geometry`. Along one axis it is a
linear operator, so it is built once per (n, s, criterion) as a matrix from scipy and applied with one
BLAS product; `pipeline.graph_ops.upsample_tf` is the in-graph twin used in serving.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from pipeline.geometry import upsampled_affine, upsampled_positions
from pipeline.volume import Volume


@functools.lru_cache(maxsize=128)
def interpolation_matrix(n_lr: int, scale: float, criterion: str) -> np.ndarray:
    """(n_hr, n_lr) float64 matrix M with HR = M @ LR along the slice axis; column k is scipy's spline of impulse k."""
    positions = upsampled_positions(n_lr, scale, criterion)
    impulses = np.eye(n_lr)
    matrix = np.stack(
        [ndimage.map_coordinates(impulse, [positions], order=3, mode="mirror") for impulse in impulses], axis=1
    )
    matrix.setflags(write=False)
    return matrix


def upsample(data: np.ndarray, scale: float, criterion: str, axis: int) -> np.ndarray:
    """Cubic-spline upsample `data` along `axis` by `scale` (float32 in, float32 out)."""
    matrix = interpolation_matrix(int(data.shape[axis]), float(scale), criterion).astype(np.float32)
    moved = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    out = np.tensordot(matrix, moved, axes=1)
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


def upsample_volume(volume: Volume, scale: float, criterion: str, axis: int | None = None) -> Volume:
    """Upsample a thick-slice volume along its slice axis, with the affine that places each thin slice."""
    axis = volume.slice_axis(axis)
    return volume.with_data(
        upsample(volume.data, scale, criterion, axis), upsampled_affine(volume.affine, axis, scale, criterion)
    )
