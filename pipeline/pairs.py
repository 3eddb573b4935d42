"""LR-input/HR-target patch pairs of one volume, for every scale and criterion: the per-volume work of the
shards job, as plain functions that the Beam job and the single-process baseline both call.

Per (criterion, s): degrade along the slice axis, cubic-interpolate back to the HR grid, crop the HR
volume to the interpolated extent, cut both on one patch grid and keep the patches whose target holds
tissue. Patches are stored slice axis first ([slice, in-plane, in-plane]) so that a model always
super-resolves along its first spatial axis, whatever the orientation of the source volume.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from pipeline.config import DEFAULT_CRITERIA, PATCH_SIZE, SCALES, check_criterion
from pipeline.degradation import degrade
from pipeline.errors import VolumeShapeError
from pipeline.geometry import degraded_length, upsampled_length
from pipeline.interpolation import upsample
from pipeline.normalization import robust_window
from pipeline.patches import FOREGROUND_FRACTION, FOREGROUND_LEVEL, extract_patches, foreground_mask, patch_grid
from pipeline.records import PatchPair
from pipeline.volume import Volume


@dataclasses.dataclass(frozen=True)
class PairConfig:
    """Everything that decides which pairs a volume gives (recorded in the shards' manifest)."""

    scales: tuple[int, ...] = SCALES
    criteria: tuple[str, ...] = DEFAULT_CRITERIA
    patch_size: int = PATCH_SIZE
    stride: int | None = None
    sigma: float | None = None
    slice_axis: int | None = None
    foreground_level: float = FOREGROUND_LEVEL
    foreground_fraction: float = FOREGROUND_FRACTION

    def __post_init__(self):
        for criterion in self.criteria:
            check_criterion(criterion)


def patch_pairs(volume: Volume, config: PairConfig) -> Iterator[PatchPair]:
    """All pairs of a volume. Checks every (criterion, s) first and raises `VolumeShapeError` before
    yielding anything, so a volume that cannot be used gives no partial output."""
    axis = volume.slice_axis(config.slice_axis)
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
    return _generate(volume, config, axis)


def _generate(volume: Volume, config: PairConfig, axis: int) -> Iterator[PatchPair]:
    hr = np.moveaxis(volume.data, axis, 0)
    for criterion in config.criteria:
        for scale in config.scales:
            low = degrade(hr, scale, criterion, axis=0, sigma=config.sigma)
            window = robust_window(low)
            upsampled = upsample(low, scale, criterion, axis=0)
            target = hr[: upsampled.shape[0]]
            corners = patch_grid(target.shape, config.patch_size, config.stride)
            targets = extract_patches(target, corners, config.patch_size)
            keep = foreground_mask(targets, window, config.foreground_level, config.foreground_fraction)
            inputs = extract_patches(upsampled, corners[keep], config.patch_size)
            for corner, patch_in, patch_out in zip(corners[keep], inputs, targets[keep]):
                yield PatchPair(
                    input=patch_in, target=patch_out, scale=scale, criterion=criterion,
                    volume_id=volume.volume_id, window=window, modality=volume.modality,
                    origin=tuple(int(c) for c in corner),
                )
