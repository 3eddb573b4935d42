"""Data consistency: the thin-slice result agrees with the thick slices it was made from, whatever a network
would have made of them.

- thin-to-thin: thick slice k *is* thin slice k·s (`pipeline.method.geometry`), so the measured thin slices come
  out as measured (`keep_measured_slices`);
- thin-to-thick: thick slice k is the mean of the thin slab [k·s, (k+1)·s), so each slab's mean is restored
  with the smallest change that does it (`restore_slab_means`; at an integer scale, each slab's residual
  added to its s thin slices);
- gaussian thick slices are blurs with no exact inverse constraint worth enforcing: nothing changes.

`make_consistent` picks by criterion; `pipeline.graph.graph_ops.make_consistent_tf` is the in-graph twin used in
serving. Generators trained with `consistent_input` take their input interpolation made consistent the same
way (`pipeline.method.slice_flow.input_upsample`): the spline treats thick slabs as point samples at their centres, so
its slab means miss the thick slices (by 0.3-0.9 dB of PSNR on brain MRI at x2..x6).
"""
from __future__ import annotations

import numpy as np

from pipeline.config import THIN_TO_THICK, THIN_TO_THIN, check_criterion

ON_GRID_TOLERANCE = 1e-6  # in thin slices: k·s within this of an integer sits on the thin grid
COLUMNS_PER_BLOCK = 1 << 14  # in-plane voxels corrected at a time (bounds the float64 temporaries)


def measured_slices(n_lr: int, scale: float, criterion: str) -> tuple[np.ndarray, np.ndarray]:
    """(thin indices, thick indices) of the thick slices that fall on the thin grid (every one at an integer
    scale, every other one at x2.5); both empty for criteria whose thick slices are not thin slices."""
    if check_criterion(criterion) != THIN_TO_THIN:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    thick = np.arange(n_lr)
    positions = thick * float(scale)
    thin = np.round(positions)
    on_grid = np.abs(positions - thin) < ON_GRID_TOLERANCE
    return thin[on_grid].astype(np.int64), thick[on_grid]


def keep_measured_slices(thin: np.ndarray, thick: np.ndarray, scale: float, criterion: str, axis: int) -> np.ndarray:
    """`thin` with its measured slices (along `axis`) replaced by the thick slices they are, in place."""
    thin_index, thick_index = measured_slices(thick.shape[axis], scale, criterion)
    np.moveaxis(thin, axis, 0)[thin_index] = np.moveaxis(thick, axis, 0)[thick_index]
    return thin


def slab_means_matrix(n_lr: int, n_hr: int, scale: float) -> np.ndarray:
    """(n_lr, n_hr) float64 W with W @ thin = each thick slab's mean: row k weighs thin slice j by its overlap
    [j, j+1) ∩ [k·s, (k+1)·s), normalised (a fractional scale splits a boundary slice between two slabs; the
    last slab may be cut short by the thin grid's end)."""
    j = np.arange(n_hr, dtype=np.float64)[None, :]
    k = np.arange(n_lr, dtype=np.float64)[:, None]
    overlap = np.maximum(np.minimum(j + 1.0, (k + 1.0) * scale) - np.maximum(j, k * scale), 0.0)
    return overlap / overlap.sum(axis=1, keepdims=True)


def restore_slab_means(thin: np.ndarray, thick: np.ndarray, scale: float, criterion: str, axis: int) -> np.ndarray:
    """`thin` (thin-to-thick) corrected in place so that each slab's mean along `axis` equals its thick slice:
    thin += Wᵀ(WWᵀ)⁻¹(thick − W·thin), the least-squares smallest such change. Other criteria: unchanged."""
    if check_criterion(criterion) != THIN_TO_THICK:
        return thin
    moved, measured = np.moveaxis(thin, axis, 0), np.moveaxis(thick, axis, 0)
    means = slab_means_matrix(measured.shape[0], moved.shape[0], scale)
    spread = np.linalg.solve(means @ means.T, means).T  # (n_hr, n_lr)
    flat_thin = moved.reshape(moved.shape[0], -1)  # a view when axis is the first or the last
    flat_thick = measured.reshape(measured.shape[0], -1)
    for start in range(0, flat_thin.shape[1], COLUMNS_PER_BLOCK):
        block = slice(start, start + COLUMNS_PER_BLOCK)
        residual = flat_thick[:, block] - means @ flat_thin[:, block]
        flat_thin[:, block] += (spread @ residual).astype(thin.dtype)
    if not np.may_share_memory(flat_thin, thin):  # axis in the middle: reshape had to copy
        moved[...] = flat_thin.reshape(moved.shape)
    return thin


def make_consistent(thin: np.ndarray, thick: np.ndarray, scale: float, criterion: str, axis: int) -> np.ndarray:
    """`thin` made to agree with the thick slices it came from, in place, as its criterion defines (above)."""
    keep_measured_slices(thin, thick, scale, criterion, axis)
    return restore_slab_means(thin, thick, scale, criterion, axis)

