"""LR-input/HR-target patch pairs of one volume, for every scale and criterion: the per-volume work of the
shards job, as plain functions that the Beam job and the single-process baseline both call.

Per slice axis (the volume's own, a given one, or every thin axis of an isotropic scan with "all") and per
(criterion, s): degrade along the slice axis, cubic-interpolate back to the HR grid, crop the HR volume to
the interpolated extent, cut both on one patch grid and keep the patches whose target holds tissue. Pairs
come out in a random order seeded by the volume id (so shards are reproducible and not in grid order):
in-plane columns of patches in shuffled order, and inside each column every (criterion, s, depth) shuffled.
A column is degraded and interpolated on its own, which is exact: both run along the slice axis only.
Patches are stored slice axis first ([slice, in-plane, in-plane]) so that a model always super-resolves
along its first spatial axis, whatever the orientation of the source volume.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator

import numpy as np

from pipeline.config import DEFAULT_CRITERIA, PATCH_SIZE, SCALES, check_criterion
from pipeline.method.degradation import degrade
from pipeline.errors import InputError, VolumeShapeError
from pipeline.method.geometry import degraded_length, upsampled_length
from pipeline.method.interpolation import upsample
from pipeline.method.normalization import IntensityWindow, robust_window
from pipeline.data.patches import FOREGROUND_FRACTION, FOREGROUND_LEVEL, extract_patches, foreground_mask, patch_starts
from pipeline.data.records import PatchPair
from pipeline.volume import Volume

ALL_AXES = "all"


@dataclasses.dataclass(frozen=True)
class PairConfig:
    """Everything that decides which pairs a volume gives (recorded in the shards' manifest)."""

    scales: tuple[int, ...] = SCALES
    criteria: tuple[str, ...] = DEFAULT_CRITERIA
    patch_size: int = PATCH_SIZE
    stride: int | None = None
    sigma: float | None = None
    slice_axis: int | str | None = None  # None: the volume's own; "all": every thin axis
    foreground_level: float = FOREGROUND_LEVEL
    foreground_fraction: float = FOREGROUND_FRACTION

    def __post_init__(self):
        for criterion in self.criteria:
            check_criterion(criterion)
        if self.slice_axis not in (None, 0, 1, 2, ALL_AXES):
            raise InputError(f"slice axis must be 0, 1, 2 or {ALL_AXES}, got {self.slice_axis!r}")

    def axes(self, volume: Volume) -> tuple[int, ...]:
        if self.slice_axis == ALL_AXES:
            return volume.thin_axes()
        return (volume.slice_axis(self.slice_axis),)


def patch_pairs(volume: Volume, config: PairConfig) -> Iterator[PatchPair]:
    """All pairs of a volume. Checks every (axis, criterion, s) first and raises `VolumeShapeError` before
    yielding anything, so a volume that cannot be used gives no partial output."""
    axes = config.axes(volume)
    for axis in axes:
        n_hr = volume.shape[axis]
        for criterion in config.criteria:
            for scale in config.scales:
                n_lr = degraded_length(n_hr, scale, criterion)
                if n_lr < 2:
                    raise VolumeShapeError(f"{n_hr} slices are too few for {criterion} x{scale}")
                extent = upsampled_length(n_lr, scale, criterion)
                if min(extent, *np.delete(volume.shape, axis)) < config.patch_size:
                    raise VolumeShapeError(
                        f"volume {volume.shape} is smaller than a {config.patch_size}^3 patch after {criterion} x{scale}"
                    )
    return _generate(volume, config, axes)


def _generate(volume: Volume, config: PairConfig, axes: tuple[int, ...]) -> Iterator[PatchPair]:
    rng = np.random.default_rng(int(volume.volume_id, 16) if volume.volume_id else 0)
    size, stride = config.patch_size, config.stride or config.patch_size
    degradations = list(itertools.product(config.criteria, config.scales))
    slabs, windows, columns = {}, {}, []
    for axis in axes:
        slabs[axis] = np.moveaxis(volume.data, axis, 0)
        for criterion, scale in degradations:  # the whole degraded volume's window, as inference computes it
            windows[axis, criterion, scale] = robust_window(degrade(slabs[axis], scale, criterion, 0, config.sigma))
        rows, cols = (patch_starts(n, size, stride) for n in slabs[axis].shape[1:])
        columns += [(axis, row, col) for row in rows for col in cols]
    for index in rng.permutation(len(columns)):
        axis, row, col = columns[index]
        column = slabs[axis][:, row:row + size, col:col + size]
        pairs = [pair for criterion, scale in degradations
                 for pair in _column_pairs(column, (row, col), criterion, scale, windows[axis, criterion, scale],
                                           config, volume)]
        for order in rng.permutation(len(pairs)):
            yield pairs[order]


def _column_pairs(column: np.ndarray, corner: tuple[int, int], criterion: str, scale: int, window: IntensityWindow,
                  config: PairConfig, volume: Volume) -> list[PatchPair]:
    """The kept pairs of one in-plane column (all depths) for one degradation."""
    size, stride = config.patch_size, config.stride or config.patch_size
    upsampled = upsample(degrade(column, scale, criterion, axis=0, sigma=config.sigma), scale, criterion, axis=0)
    target = column[: upsampled.shape[0]]
    starts = np.array([[z, 0, 0] for z in patch_starts(len(target), size, stride)], dtype=np.int64)
    targets = extract_patches(target, starts, size)
    keep = foreground_mask(targets, window, config.foreground_level, config.foreground_fraction)
    inputs = extract_patches(upsampled, starts[keep], size)
    return [PatchPair(input=patch_in, target=patch_out, scale=scale, criterion=criterion, volume_id=volume.volume_id,
                      window=window, modality=volume.modality, origin=(int(z), *corner))
            for (z, _, _), patch_in, patch_out in zip(starts[keep], inputs, targets[keep])]
