"""Cubic patches on a regular grid, a foreground filter, and exact reassembly for whole-volume inference."""
from __future__ import annotations

import itertools

import numpy as np

from pipeline.config import PATCH_SIZE
from pipeline.errors import VolumeShapeError
from pipeline.normalization import IntensityWindow

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


def patch_grid(shape: tuple[int, ...], size: int = PATCH_SIZE, stride: int | None = None) -> np.ndarray:
    """(P, 3) int array of patch corners covering a 3D volume; stride defaults to the size (no overlap)."""
    stride = size if stride is None else stride
    axes = [patch_starts(int(length), size, stride) for length in shape]
    return np.array(list(itertools.product(*axes)), dtype=np.int64).reshape(-1, 3)


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


def reassemble(
    patches: np.ndarray, corners: np.ndarray, shape: tuple[int, int, int], weights: np.ndarray | None = None
) -> np.ndarray:
    """Put patches back into a volume, averaging overlaps (optionally with a per-voxel weight map).

    Accumulates in float64, so non-overlapping and consistent overlapping patches come back bit-exact.
    """
    size = patches.shape[1]
    weights = np.ones((size,) * 3) if weights is None else np.asarray(weights, dtype=np.float64)
    total = np.zeros(shape, dtype=np.float64)
    norm = np.zeros(shape, dtype=np.float64)
    for patch, (i, j, k) in zip(patches, corners):
        region = (slice(i, i + size), slice(j, j + size), slice(k, k + size))
        total[region] += patch * weights
        norm[region] += weights
    if not (norm > 0).all():
        raise ValueError("the patches do not cover the whole volume")
    return (total / norm).astype(patches.dtype)
