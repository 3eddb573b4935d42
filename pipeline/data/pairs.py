"""Generator-input/HR-target patch pairs of one volume, for every scale and criterion: the per-volume work of
the shards job, as plain functions that the Beam job and the single-process baseline both call.

Per augmentation variant (0: the volume as measured; k > 0: its k-th seeded augmentation — contrast, gamma,
bias, noise — made before the degradation, so every pair stays exact), per slice axis (the volume's own, a
given one, or every thin axis of an isotropic scan with "all") and per (criterion, s): degrade the whole
volume along the slice axis and make the generator's input from the thick slices exactly as inference does
(`pipeline.method.slice_flow.normalized_input`: flow-guided or spline, on whole slices, in the thick volume's
window, with thin-to-thick's slab means restored for a consistent generator), crop the HR volume to the
input's extent, cut both on one patch grid and keep the patches whose target holds tissue. Each (variant,
axis, criterion) comes out as one block with its scales mixed in a random order seeded by the volume id, so
shards are reproducible and not in grid order. Patches are stored slice axis first ([slice, in-plane,
in-plane]) so that a model always super-resolves along its first spatial axis.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Iterator

import numpy as np

from pipeline.config import (DEFAULT_CRITERIA, PATCH_SIZE, SCALES, THIN_TO_THICK, check_criterion, scale_label,
                             scale_ratio)
from pipeline.data.augmentation import AugmentationConfig, Histogram, augment_block
from pipeline.data.patches import FOREGROUND_FRACTION, FOREGROUND_LEVEL, extract_patches, foreground_mask, patch_starts
from pipeline.data.records import FLOW, INPUT_KINDS, PatchPair
from pipeline.errors import InputError, VolumeShapeError
from pipeline.method.degradation import degrade, thin_reference
from pipeline.method.geometry import degraded_length, upsampled_length
from pipeline.method.normalization import robust_window
from pipeline.method.slice_flow import normalized_input
from pipeline.volume import Volume

LOG = logging.getLogger("soupgan.pairs")  # a line per part of a volume: the flow makes each take minutes

ALL_AXES = "all"


@dataclasses.dataclass(frozen=True)
class PairConfig:
    """Everything that decides which pairs a volume gives (recorded in the shards' manifest)."""

    scales: tuple[float, ...] = SCALES  # integers, or ratios p/q (`pipeline.config.scale_ratio`)
    criteria: tuple[str, ...] = DEFAULT_CRITERIA
    patch_size: int = PATCH_SIZE
    stride: int | None = None
    sigma: float | None = None
    slice_axis: int | str | None = None  # None: the volume's own; "all": every thin axis
    foreground_level: float = FOREGROUND_LEVEL
    foreground_fraction: float = FOREGROUND_FRACTION
    input_kind: str = FLOW  # the generator input: flow-guided interpolation or the cubic spline
    consistent: bool = True  # thin-to-thick inputs with each slab's mean restored (other criteria: no effect)
    variants: int = 1  # versions of each volume: the first as measured, the others seeded augmentations
    augmentation: AugmentationConfig = AugmentationConfig()
    flow_threads: int | None = None  # threads of the flow per volume (default: one per CPU)

    def __post_init__(self):
        for criterion in self.criteria:
            check_criterion(criterion)
        if self.slice_axis not in (None, 0, 1, 2, ALL_AXES):
            raise InputError(f"slice axis must be 0, 1, 2 or {ALL_AXES}, got {self.slice_axis!r}")
        if self.input_kind not in INPUT_KINDS:
            raise InputError(f"input must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")
        if self.variants < 1:
            raise InputError(f"variants must be at least 1, got {self.variants}")

    def axes(self, volume: Volume) -> tuple[int, ...]:
        if self.slice_axis == ALL_AXES:
            return volume.thin_axes()
        return (volume.slice_axis(self.slice_axis),)

    def is_consistent(self, criterion: str) -> bool:
        """Whether inputs of this criterion have their slab means restored."""
        return self.consistent and criterion == THIN_TO_THICK


def patch_pairs(volume: Volume, config: PairConfig) -> Iterator[PatchPair]:
    """All pairs of a volume. Checks every (axis, criterion, s) first and raises `VolumeShapeError` before
    yielding anything, so a volume that cannot be used gives no partial output."""
    axes = config.axes(volume)
    for axis in axes:
        n_hr = volume.shape[axis]
        for criterion in config.criteria:
            for scale in config.scales:
                n_lr = degraded_length(n_hr, scale_ratio(scale)[0], criterion)
                if n_lr < 2:
                    raise VolumeShapeError(f"{n_hr} slices are too few for {criterion} x{scale_label(scale)}")
                extent = upsampled_length(n_lr, scale, criterion)
                if min(extent, *np.delete(volume.shape, axis)) < config.patch_size:
                    raise VolumeShapeError(
                        f"volume {volume.shape} is smaller than a {config.patch_size}^3 patch after {criterion} "
                        f"x{scale_label(scale)}"
                    )
    return _generate(volume, config, axes)


def volume_seed(volume: Volume) -> int:
    return int(volume.volume_id, 16) if volume.volume_id else 0


def variant_data(volume: Volume, variant: int, augmentation: AugmentationConfig) -> np.ndarray:
    """The voxels of one variant: the volume itself (0) or its `variant`-th augmentation, seeded by the volume id
    (in the augmented volume's own normalised units)."""
    if variant == 0:
        return np.asarray(volume.data, dtype=np.float32)
    normalised = robust_window(volume.data).normalize(volume.data)
    rng = np.random.default_rng((volume_seed(volume), variant))
    return augment_block(normalised, (0, 0, 0), normalised.shape, Histogram.of(normalised), rng, augmentation)


def _generate(volume: Volume, config: PairConfig, axes: tuple[int, ...]) -> Iterator[PatchPair]:
    rng = np.random.default_rng(volume_seed(volume))
    parts, done = config.variants * len(axes) * len(config.criteria), 0
    for variant in range(config.variants):
        data = variant_data(volume, variant, config.augmentation)
        for axis in axes:
            for criterion in config.criteria:
                pairs = [pair for scale in config.scales
                         for pair in scale_pairs(data, axis, criterion, scale, config, volume, variant)]
                done += 1
                LOG.info("volume %s: part %d of %d (variant %d, slice axis %d, %s): %d pairs", volume.volume_id,
                         done, parts, variant, axis, criterion, len(pairs))
                for order in rng.permutation(len(pairs)):
                    yield pairs[order]


def scale_pairs(data: np.ndarray, axis: int, criterion: str, scale: float, config: PairConfig, volume: Volume,
                variant: int = 0) -> list[PatchPair]:
    """The kept pairs of one degradation of `data` along `axis`, on the patch grid, in grid order. The thick
    volume is made and turned slice axis first exactly as `soupgan upsample` turns a thick scan; a fractional
    scale p/q degrades by p and takes as target the thin slices q apart (`thin_reference`)."""
    p, q = scale_ratio(scale)
    thick = np.moveaxis(degrade(data, p, criterion, axis, config.sigma), axis, 0)
    window = robust_window(thick)
    consistent = config.is_consistent(criterion)
    inputs = normalized_input(thick, scale, criterion, window, flow=config.input_kind == FLOW,
                              consistent=consistent, threads=config.flow_threads)
    target = np.moveaxis(thin_reference(data, q, criterion, axis), axis, 0)[: len(inputs)]
    size, stride = config.patch_size, config.stride or config.patch_size
    corners = np.array([(z, y, x) for z in patch_starts(target.shape[0], size, stride)
                        for y in patch_starts(target.shape[1], size, stride)
                        for x in patch_starts(target.shape[2], size, stride)], dtype=np.int64)
    targets = extract_patches(target, corners, size)
    keep = foreground_mask(targets, window, config.foreground_level, config.foreground_fraction)
    patches = extract_patches(inputs, corners[keep], size)
    return [PatchPair(input=patch_in, target=patch_out, scale=scale, criterion=criterion, volume_id=volume.volume_id,
                      window=window, modality=volume.modality, origin=tuple(int(v) for v in corner),
                      input_kind=config.input_kind, consistent=consistent, slice_axis=axis, variant=variant)
            for corner, patch_in, patch_out in zip(corners[keep], patches, targets[keep])]
