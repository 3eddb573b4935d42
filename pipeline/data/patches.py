"""Cubic patches on a regular grid along every axis, and the foreground filter that keeps those with tissue."""
from __future__ import annotations

import numpy as np

from pipeline.config import PATCH_SIZE
from pipeline.errors import VolumeShapeError
from pipeline.method.normalization import IntensityWindow

FOREGROUND_LEVEL = 0.1  # a voxel is foreground above low + 10% of the intensity window
FOREGROUND_FRACTION = 0.05  # a patch is kept when at least 5% of its voxels are foreground


def patch_starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets 0, stride, 2·stride, ... plus a last patch flush with the end, covering every voxel."""
    if stride < 1 or size < 1:
        raise ValueError(f"patch size and stride must be positive, got {size} and {stride}")
    if length < size:
        raise VolumeShapeError(f"volume is {length} voxels along an axis, smaller than the {size}-voxel patch")
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def extract_patches(data: np.ndarray, corners: np.ndarray, size: int = PATCH_SIZE) -> np.ndarray:
    """(P, size, size, size) copies of the patches at `corners`."""
    out = np.empty((len(corners), size, size, size), dtype=data.dtype)
    for index, (i, j, k) in enumerate(corners):
        out[index] = data[i : i + size, j : j + size, k : k + size]
    return out


def foreground_mask(
    patches: np.ndarray,
    window: IntensityWindow,
    level: float = FOREGROUND_LEVEL,
    fraction: float = FOREGROUND_FRACTION,
) -> np.ndarray:
    """(P,) bool: which patches hold enough tissue to be worth training on (drops background-only ones)."""
    threshold = window.low + level * window.width
    tissue = (patches > threshold).reshape(len(patches), -1).mean(axis=1)
    return tissue >= fraction
