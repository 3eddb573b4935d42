"""Whole-volume super-resolution of a thick-slice scan in raw intensities: the one implementation that the
CLI, the benchmarks and (by a parity test) the serving graph share.

Steps: the [p0.5, p99.5] window of the **whole thick volume** (what training records carry), slice axis
first, cubic spline upsampling (slab means restored for a generator trained with `consistent_input`) +
normalisation of one in-plane column at a time (both run along the slice axis only, so an in-plane chunk is
exact and the full upsampled volume never exists; a `flow_input` generator's flow-guided interpolation needs
whole slices, so its input is made whole, once), the
generator over 3D tiles (`model.inference.sliding_window`) whose inputs reach its receptive radius past the volume's
edges, filled with the edge voxels (a scan that ends inside tissue, a slab or a CT field of view, would
otherwise meet the network's zero padding as a wall of air), denormalisation, slice axis back, the affine that
puts every thin slice at its true position and data consistency (`pipeline.method.consistency`): thin-to-thin keeps
the measured slices as measured, thin-to-thick restores each slab's mean to its thick slice.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Sequence

import keras
import numpy as np

from model.networks.generator import SoupGenerator
from model.inference.sliding_window import Region, SlidingWindow, edge_padded, least_work_cores, sliding_window_inference
from pipeline.config import THIN_TO_THIN
from pipeline.method.consistency import make_consistent
from pipeline.errors import InputError
from pipeline.method.geometry import upsampled_affine, upsampled_length
from pipeline.method.normalization import IntensityWindow, robust_window
from pipeline.method.slice_flow import normalized_input
from pipeline.volume import Volume

LOG = logging.getLogger("soupgan")

# Each tile's input (core + receptive field on every side) holds at most this many voxels, and the cores are those
# that compute the fewest halo voxels under it: memory against speed (peak RSS per volume in BENCHMARKS.md).
TILE_INPUT_VOXELS = 3_500_000


class UpsampledColumns:
    """Tiles of the normalised, cubic-upsampled thick volume (slice axis first; `consistent`: with slab means
    restored), made one in-plane column at a time and cached while consecutive tiles share it."""

    def __init__(self, thick: np.ndarray, scale: float, criterion: str, window: IntensityWindow,
                 consistent: bool = False):
        self.thick, self.scale, self.criterion, self.window = thick, scale, criterion, window
        self.consistent = consistent
        self._key, self._column = None, None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (upsampled_length(self.thick.shape[0], self.scale, self.criterion), *self.thick.shape[1:])

    def __call__(self, region: Region) -> np.ndarray:
        depth, rows, columns = region
        key = (rows.start, rows.stop, columns.start, columns.stop)
        if key != self._key:
            self._key = key
            self._column = normalized_input(self.thick[:, rows, columns], self.scale, self.criterion, self.window,
                                            consistent=self.consistent)
        return self._column[depth]


class FlowUpsampledVolume:
    """The normalised thick volume (slice axis first) upsampled by flow-guided interpolation, made whole once
    (the in-plane flow needs whole slices); the same tiles as `UpsampledColumns`."""

    def __init__(self, thick: np.ndarray, scale: float, criterion: str, window: IntensityWindow,
                 consistent: bool = False):
        start = time.perf_counter()
        self.data = normalized_input(thick, scale, criterion, window, flow=True, consistent=consistent)
        LOG.info("flow-guided input: %d thin slices from %d thick ones in %.1f s", len(self.data), len(thick),
                 time.perf_counter() - start)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape

    def __call__(self, region: Region) -> np.ndarray:
        return self.data[tuple(region)]


def compiled_predictor(generator: SoupGenerator, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """A batch function [B, D, H, W] → [B, D, H, W] running the generator at one scalar scale, compiled once
    per tile shape (a scalar scale takes the one-interpolated-kernel path, never the every-kernel one)."""
    scale = np.float32(scale)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def run(image):
            return generator({"image": image[..., None], "scale": tf.constant(scale)}, training=False)[..., 0]

        return lambda batch: run(tf.convert_to_tensor(batch)).numpy()
    return lambda batch: keras.ops.convert_to_numpy(
        generator({"image": batch[..., None], "scale": scale}, training=False))[..., 0]


def check_scale(generator: SoupGenerator, scale: float) -> float:
    """The scale as a float, or a one-line error when it lies outside the scales the generator learnt."""
    low, high = min(generator.scales), max(generator.scales)
    if not low <= scale <= high:
        raise InputError(f"scale {scale:g} is outside the model's range [{low}, {high}]")
    return float(scale)


def thin_volume(volume: Volume, thin: np.ndarray, scale: float, criterion: str, axis: int) -> Volume:
    """The thin-slice result (slice axis first) as a volume of the same scan, each thin slice at its true place."""
    return volume.with_data(np.moveaxis(thin, 0, axis), upsampled_affine(volume.affine, axis, scale, criterion))


@dataclasses.dataclass(frozen=True)
class GeneratorInput:
    """Which interpolation of the thick slices a generator refines (it records both flags when it is saved)."""

    flow: bool = False  # flow-guided slice interpolation, not the cubic spline
    consistent: bool = False  # thin-to-thick: each slab's mean restored to its thick slice

    @classmethod
    def of(cls, generator: SoupGenerator) -> "GeneratorInput":
        return cls(generator.flow_input, generator.consistent_input)


@dataclasses.dataclass(frozen=True)
class Tiling:
    """How `super_resolve` cuts the thin grid into tiles. `tile`: the cores (slice axis first; None: those of
    least work within `TILE_INPUT_VOXELS`); `halo` (one for all axes, or per axis; None: the generator's
    receptive field, which makes the tiled result equal one pass over the volume padded with its edge voxels);
    `overlap`/`blending` matter only with a smaller halo; `batch_size` tiles per network call."""

    tile: Sequence[int] | None = None
    halo: int | Sequence[int] | None = None
    overlap: float = 0.0
    blending: str = "gaussian"
    batch_size: int = 1

    def window(self, shape: Sequence[int], receptive_field: Sequence[int]) -> SlidingWindow:
        halo = receptive_field if self.halo is None else self.halo
        cores = self.tile or least_work_cores(shape, halo, TILE_INPUT_VOXELS)
        return SlidingWindow(shape, cores, halo, self.overlap, self.blending, beyond_edges=True)


def input_source(thick: Volume, scale: float, criterion: str, axis: int, inputs: GeneratorInput):
    """(source, window): what the generator's tiles are read from for a thick scan — its normalised input, slice
    axis first, lazily upsampled columns or the flow-guided input — and the whole thick volume's window."""
    window = robust_window(thick.data)
    kind = FlowUpsampledVolume if inputs.flow else UpsampledColumns
    return kind(np.moveaxis(thick.data, axis, 0), scale, criterion, window, inputs.consistent), window


def tiled_over_volume(volume: Volume, predict: Callable[[np.ndarray], np.ndarray], scale: float, criterion: str,
                      axis: int | None, tiles: Callable[[tuple], SlidingWindow],
                      inputs: GeneratorInput = GeneratorInput(), batch_size: int = 1,
                      progress: Callable[[int, int], None] | None = None) -> Volume:
    """Run a normalised-intensity network `predict` over the whole volume: window of the whole thick volume,
    lazily upsampled columns or the flow-guided input (edge-padded where a tile reaches past the volume),
    `tiles(shape)` of the thin grid, denormalised output with its geometry."""
    axis = volume.slice_axis(axis)
    source, window = input_source(volume, scale, criterion, axis, inputs)
    output = sliding_window_inference(edge_padded(source, source.shape), predict, tiles(source.shape), batch_size,
                                      transform=window.denormalize, progress=progress)
    return thin_volume(volume, output, scale, criterion, axis)


def super_resolve(volume: Volume, generator: SoupGenerator, scale: float, criterion: str = THIN_TO_THIN,
                  axis: int | None = None, tiling: Tiling = Tiling(),
                  progress: Callable[[int, int], None] | None = None) -> Volume:
    """The thin-slice volume, in the input's units, with the affine of `pipeline.method.geometry`'s conventions,
    the generator run over the tiles of `tiling`, then data consistency for the criterion."""
    scale = check_scale(generator, scale)
    axis = volume.slice_axis(axis)
    result = tiled_over_volume(volume, compiled_predictor(generator, scale), scale, criterion, axis,
                               lambda shape: tiling.window(shape, generator.receptive_field),
                               GeneratorInput.of(generator), tiling.batch_size, progress)
    make_consistent(result.data, volume.data, scale, criterion, axis)
    return result
