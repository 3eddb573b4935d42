"""Robust per-volume intensity normalisation and its exact inverse (raw MRI units or CT HU in and out).

The window is [p0.5, p99.5] of the volume's voxels, each an exact order statistic (the value at rank
floor(q·(N-1)) of the sorted voxels) so that the in-graph twin in `pipeline.graph.graph_ops` finds the same
numbers. Values are mapped linearly, never clipped, so the inverse restores every voxel.
"""
from __future__ import annotations

import dataclasses

import numpy as np

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def percentile_rank(count: int, percentile: float) -> int:
    """Rank of the order statistic used for `percentile` among `count` values."""
    return int(np.floor(percentile / 100.0 * (count - 1)))


@dataclasses.dataclass(frozen=True)
class IntensityWindow:
    """The raw-intensity interval mapped to [0, 1]."""

    low: float
    high: float

    @property
    def width(self) -> float:
        """high - low, or 1 for a constant volume so that normalisation stays finite."""
        return self.high - self.low if self.high > self.low else 1.0

    def normalize(self, data: np.ndarray) -> np.ndarray:
        return ((np.asarray(data, dtype=np.float64) - self.low) / self.width).astype(np.float32)

    def denormalize(self, data: np.ndarray) -> np.ndarray:
        return (np.asarray(data, dtype=np.float64) * self.width + self.low).astype(np.float32)


def normalize_float32(values: np.ndarray, low: np.float32, high: np.float32) -> np.ndarray:
    """[low, high] → [0, 1] in float32 arithmetic, as `pipeline.graph.graph_ops.normalize_tf` computes it (the
    training input of shards, bit for bit; `IntensityWindow.normalize` rounds once, from float64)."""
    width = high - low if high > low else np.float32(1)
    return (values.astype(np.float32) - low) / width


def robust_window(data: np.ndarray) -> IntensityWindow:
    """The [p0.5, p99.5] window of a volume, computed with a partial sort (O(N))."""
    flat = np.asarray(data, dtype=np.float32).ravel()
    ranks = [percentile_rank(flat.size, LOW_PERCENTILE), percentile_rank(flat.size, HIGH_PERCENTILE)]
    low, high = np.partition(flat, ranks)[ranks]
    return IntensityWindow(float(low), float(high))
