"""Data consistency for thin-to-thin: thick slice k *is* thin slice k·s (`pipeline.geometry`), so the thin
slices that were measured come out as measured, whatever a network would have made of them.

Thin-to-thick and gaussian thick slices are averages or blurs, never thin slices, so nothing is kept there.
`pipeline.graph_ops.keep_measured_slices_tf` is the in-graph twin used in serving.
"""
from __future__ import annotations

import numpy as np

from pipeline.config import THIN_TO_THIN, check_criterion

ON_GRID_TOLERANCE = 1e-6  # in thin slices: k·s within this of an integer sits on the thin grid


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
