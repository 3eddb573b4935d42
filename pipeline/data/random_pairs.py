"""Patch pairs drawn at random from whole thin-slice volumes, made on the fly with the shards job's own
degradation and spline: every slice axis of an isotropic scan, every slice phase, flips and in-plane
transposes, intensity augmentation before the degradation (`pipeline.data.augmentation`). No grid order and no
two epochs alike; NumPy only, so it feeds any Keras backend (the JAX/GPU recipe as much as TensorFlow).

A draw: volume, slice axis, scale, slice phase, an in-plane column of the patch's width through the whole
slice axis (the spline runs along it, so the column is exact), augmented, degraded and cubic-upsampled; the
patch is cut from the column where its target holds tissue. A fractional scale p/q degrades by p and takes as
target the thin slices q apart, as the shards job does (`pipeline.method.degradation.thin_reference`). For a
flow-input generator (`flow_input`) the column is FLOW_CONTEXT voxels wider on each side (the in-plane flow
needs context) and only the patch's thin slices are interpolated, from the thick slices around them.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from pipeline.data.augmentation import AugmentationConfig, Histogram, augment_block
from pipeline.config import PATCH_SIZE, SCALES, THIN_TO_THIN, check_criterion, scale_label, scale_ratio
from pipeline.method.consistency import make_consistent
from pipeline.method.degradation import degrade, thin_reference
from pipeline.errors import VolumeShapeError
from pipeline.method.geometry import degraded_length, upsampled_length
from pipeline.method.normalization import robust_window
from pipeline.data.patches import FOREGROUND_FRACTION, FOREGROUND_LEVEL
from pipeline.method.slice_flow import flow_upsample, input_upsample
from pipeline.volume import Volume

MAX_TRIES = 50  # draws per patch before a background one is accepted
FLOW_CONTEXT = 16  # in-plane voxels around a flow-input patch that its flow is estimated on


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    patch_size: int = PATCH_SIZE
    patch_depth: int | None = None  # along the slice axis (default patch_size): longer for slice-axis reach
    scales: tuple[float, ...] = SCALES  # integers, or ratios p/q (`pipeline.config.scale_ratio`)
    criterion: str = THIN_TO_THIN
    flips: bool = True
    augmentation: AugmentationConfig = AugmentationConfig()
    slice_axes: tuple[int, ...] | None = None  # degrade along these axes only (default: each volume's thin axes)
    consistent_input: bool = False  # inputs with thin-to-thick's slab means restored after the spline
    flow_input: bool = False  # inputs made by flow-guided interpolation (`pipeline.method.slice_flow`), not the spline

    def __post_init__(self):
        check_criterion(self.criterion)

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        """(slice axis, row, column) of a pair."""
        return (self.patch_depth or self.patch_size, self.patch_size, self.patch_size)


def longest_pair(length: int, scale: float, criterion: str) -> int:
    """The most slices a pair can hold along an axis of `length` thin slices degraded by `scale` (p/q: by p),
    whatever the slice phase (0 when fewer than two thick slices remain)."""
    p, _ = scale_ratio(scale)
    n_lr = degraded_length(length - (p - 1), p, criterion)
    return upsampled_length(n_lr, scale, criterion) if n_lr >= 2 else 0


class RandomPairSampler:
    """`sampler.batch(n, rng)` → (inputs [n, D, P, P], targets [n, D, P, P], scales [n]), slice axis first,
    in normalised intensities (each volume's own [p0.5, p99.5] window, as records carry)."""

    def __init__(self, volumes: Sequence[Volume], config: SamplerConfig):
        self.config = config
        self.volumes, self.axes, self.histograms = [], [], []
        for volume in volumes:
            normalised = robust_window(volume.data).normalize(volume.data)
            axes = config.slice_axes or volume.thin_axes()
            for axis in axes:
                self._check(normalised.shape, axis)
            self.volumes.append(normalised)
            self.axes.append(axes)
            self.histograms.append(Histogram.of(normalised))

    def _check(self, shape: tuple[int, ...], axis: int) -> None:
        depth, size, _ = self.config.patch_shape
        for scale in self.config.scales:
            in_plane = [n for a, n in enumerate(shape) if a != axis]
            if longest_pair(shape[axis], scale, self.config.criterion) < depth or min(in_plane) < size:
                raise VolumeShapeError(f"a {'x'.join(map(str, shape))} volume is too small for {depth}x{size}x{size} "
                                       f"patches at x{scale_label(scale)} along axis {axis}")

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """One (input, target, scale), slice axis first."""
        config = self.config
        depth, size, _ = config.patch_shape
        index = int(rng.integers(len(self.volumes)))
        volume, axis = self.volumes[index], int(rng.choice(self.axes[index]))
        p, q = scale_ratio(float(rng.choice(config.scales)))
        scale = p if q == 1 else p / q
        moved = np.moveaxis(volume, axis, 0)
        for _ in range(MAX_TRIES):  # an in-plane column through tissue (the last try is kept regardless)
            row = int(rng.integers(moved.shape[1] - size + 1))
            col = int(rng.integers(moved.shape[2] - size + 1))
            column = moved[:, row:row + size, col:col + size]
            if (column > FOREGROUND_LEVEL).mean() >= FOREGROUND_FRACTION:
                break
        phase = int(rng.integers(p))  # which thin slice the first thick one starts at
        margin = FLOW_CONTEXT if config.flow_input else 0
        top, left = max(row - margin, 0), max(col - margin, 0)
        block = moved[phase:, top:row + size + margin, left:col + size + margin]
        hr = augment_block(block, (phase, top, left), moved.shape, self.histograms[index], rng, config.augmentation)
        low = degrade(hr, p, config.criterion, axis=0)
        inner = (slice(None), slice(row - top, row - top + size), slice(col - left, col - left + size))
        thin = thin_reference(hr, q, config.criterion, axis=0)
        target = thin[: upsampled_length(len(low), scale, config.criterion)][inner]
        start = self._tissue_start(target, depth, rng)
        depth_range = slice(start, start + depth)
        if config.flow_input:
            pair_in = self._flow_input(low, scale, depth_range)[inner]
        else:
            pair_in = input_upsample(low, scale, config.criterion, 0, consistent=config.consistent_input)[depth_range]
        pair_out = target[depth_range]
        if config.flips:
            pair_in, pair_out = _flip(pair_in, pair_out, rng)
        return pair_in, pair_out, scale

    def _flow_input(self, low: np.ndarray, scale: float, depth_range: slice) -> np.ndarray:
        """The flow-guided input's thin slices in `depth_range` only; with `consistent_input` made from whole
        slabs, whose means are restored slab by slab (exact: at an integer scale each slab's correction is its
        own; at p/q thin slices straddle slabs, so the whole column is made and restored, as inference does)."""
        if not self.config.consistent_input:
            return flow_upsample(low, scale, self.config.criterion, 0, depth_range)
        if scale != int(scale):
            whole = flow_upsample(low, scale, self.config.criterion, 0)
            return make_consistent(whole, low, scale, self.config.criterion, 0)[depth_range]
        scale = int(scale)
        first, last = depth_range.start // scale, -(-depth_range.stop // scale)
        slabs = flow_upsample(low, scale, self.config.criterion, 0, slice(first * scale, last * scale))
        make_consistent(slabs, low[first:last], scale, self.config.criterion, 0)
        return slabs[depth_range.start - first * scale: depth_range.stop - first * scale]

    @staticmethod
    def _tissue_start(target: np.ndarray, depth: int, rng: np.random.Generator) -> int:
        """A random start along the slice axis whose patch holds tissue, if any does."""
        tissue = (target > FOREGROUND_LEVEL).reshape(len(target), -1).mean(axis=1)
        windows = np.convolve(tissue, np.ones(depth) / depth, mode="valid")
        good = np.flatnonzero(windows >= FOREGROUND_FRACTION)
        return int(rng.choice(good)) if len(good) else int(rng.integers(len(windows)))

    def batch(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pairs = [self.pair(rng) for _ in range(count)]
        return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                np.array([p[2] for p in pairs], dtype=np.float32))


def _flip(pair_in: np.ndarray, pair_out: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random flips of all three axes and transpose of the in-plane axes applied to both."""
    axes = tuple(a for a in range(3) if rng.random() < 0.5)
    if axes:
        pair_in, pair_out = np.flip(pair_in, axes), np.flip(pair_out, axes)
    if rng.random() < 0.5:
        pair_in, pair_out = pair_in.transpose(0, 2, 1), pair_out.transpose(0, 2, 1)
    return np.ascontiguousarray(pair_in), np.ascontiguousarray(pair_out)
