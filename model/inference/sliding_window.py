"""Sliding-window inference over a 3D volume in bounded memory (after MONAI's SlidingWindowInferer).

The output grid is cut into tiles of one fixed shape (the last tile of each axis flush with the end, so a
single compiled function serves every tile). Each tile's *core* is what it contributes; its input is the
core grown by a `halo` on every side. At the volume's edges that input either shifts inward (the network's
own zero padding then matches a whole-volume pass) or, with `beyond_edges`, reaches past the edge, where
`edge_padded` repeats the edge voxels (then each core matches a pass over the edge-padded volume). With
`halo` ≥ the network's receptive radius, each core equals that one pass. Cores may also overlap and be
blended with Gaussian or Hann weights, which hides seams when the halo is smaller than the receptive radius.
Tile inputs come from a caller's `read(region)` (e.g. a lazily upsampled volume); blended outputs go into
one preallocated float32 array.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Iterator, Sequence

import numpy as np

BLENDINGS = ("gaussian", "hann", "constant")
GAUSSIAN_SIGMA_SCALE = 0.125  # σ = 1/8 of the core, as MONAI's default

Region = tuple[slice, slice, slice]


def equal_cores(length, core):
    """(count, size): the fewest cores of at most `core` voxels that cover `length`, made equal, so the halos
    around them add as little work as they can (181 voxels in cores of 64: three of 61, not 64, 64 and 64).
    Integer arithmetic only, so it works on Python ints and on a graph's shape tensors alike."""
    count = (length + core - 1) // core
    return count, (length + count - 1) // count


def least_work_cores(shape: Sequence[int], halo: Sequence[int] | int, max_input_voxels: int) -> tuple[int, int, int]:
    """Tile cores whose inputs (core + 2 × halo per axis) hold at most `max_input_voxels` and make the network
    compute the fewest voxels over the whole grid (halos are computed and dropped): a memory budget, not a
    fixed shape, so a 181×181×217 grid gets 2×2 in-plane cores spanning the slice axis rather than 3×2×2
    small cubes. Ties go to fewer tiles; a budget below the smallest tile input still gives 1-voxel cores."""
    halo = (halo,) * 3 if np.isscalar(halo) else tuple(halo)
    candidates = [np.unique(equal_cores(n, np.arange(1, n + 1))[1]) for n in shape]
    grids = np.meshgrid(*candidates, indexing="ij")
    inputs = [core + 2 * h for core, h in zip(grids, halo)]
    counts = [equal_cores(n, core)[0] for core, n in zip(grids, shape)]
    tile_voxels = inputs[0] * inputs[1] * inputs[2]
    tiles = counts[0] * counts[1] * counts[2]
    work = np.where(tile_voxels <= max_input_voxels, tiles * tile_voxels, np.iinfo(np.int64).max)
    best = np.lexsort((tiles.ravel(), work.ravel()))[0]
    return tuple(int(grid.ravel()[best]) for grid in grids)


@dataclasses.dataclass(frozen=True)
class AxisTiling:
    """Tiles along one axis of length `size`: core starts, core length, input length and input starts."""

    size: int
    core: int
    halo: int
    overlap: float
    beyond_edges: bool = False

    @property
    def core_length(self) -> int:
        return equal_cores(self.size, self.core)[1]

    @property
    def input_length(self) -> int:
        length = self.core_length + 2 * self.halo
        return length if self.beyond_edges else min(length, self.size)

    @property
    def core_starts(self) -> list[int]:
        """Regular starts, step = core·(1 − overlap); the last one flush with the end."""
        length = self.core_length
        step = max(1, int(round(length * (1.0 - self.overlap))))
        starts = list(range(0, self.size - length, step))
        return starts + [self.size - length]

    def input_start(self, core_start: int) -> int:
        """The input window holding the core with `halo` on each side, moved inward at the edges unless the
        window may reach past them."""
        if self.beyond_edges:
            return core_start - self.halo
        return int(np.clip(core_start - self.halo, 0, self.size - self.input_length))

    def blend_window(self, blending: str) -> np.ndarray:
        """1D weights over a core; strictly positive so every voxel has weight."""
        n = self.core_length
        position = np.arange(n, dtype=np.float64) + 0.5
        if blending == "gaussian":
            sigma = max(GAUSSIAN_SIGMA_SCALE * n, 1e-3)
            return np.exp(-0.5 * ((position - n / 2.0) / sigma) ** 2)
        if blending == "hann":
            return np.sin(np.pi * position / n) ** 2
        return np.ones(n)

    def weight_sum(self, blending: str) -> np.ndarray:
        """Sum over tiles of the blend weights at each position of the axis."""
        window = self.blend_window(blending)
        total = np.zeros(self.size)
        for start in self.core_starts:
            total[start:start + self.core_length] += window
        return total


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: where its input comes from, where its core goes, and the core's place inside the input."""

    input_region: Region
    output_region: Region
    core_in_input: Region


class SlidingWindow:
    """Tiles of a 3D grid and the weights that blend them (separable, so no 3D weight map is kept)."""

    def __init__(self, shape: Sequence[int], core: Sequence[int] | int, halo: Sequence[int] | int = 0,
                 overlap: float = 0.0, blending: str = "gaussian", beyond_edges: bool = False):
        core = (core,) * 3 if np.isscalar(core) else tuple(core)
        halo = (halo,) * 3 if np.isscalar(halo) else tuple(halo)
        if blending not in BLENDINGS:
            raise ValueError(f"blending must be one of {', '.join(BLENDINGS)}, got {blending!r}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if min(core) < 1 or min(halo) < 0:
            raise ValueError(f"tile cores must be >= 1 and halos >= 0, got {core} and {halo}")
        self.shape = tuple(int(n) for n in shape)
        self.blending = blending
        self.axes = [AxisTiling(n, int(c), int(h), overlap, beyond_edges) for n, c, h in zip(self.shape, core, halo)]
        # The blend of a tile is w0 ⊗ w1 ⊗ w2, normalised by the separable sum of the weights of all tiles.
        self._windows = [axis.blend_window(blending) for axis in self.axes]
        self._sums = [axis.weight_sum(blending) for axis in self.axes]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(axis.input_length for axis in self.axes)

    def __len__(self) -> int:
        return int(np.prod([len(axis.core_starts) for axis in self.axes]))

    def tiles(self) -> Iterator[Tile]:
        """Every tile, the first axis varying fastest (so consecutive tiles share in-plane inputs)."""
        starts = [axis.core_starts for axis in self.axes]
        for c2, c1, c0 in itertools.product(starts[2], starts[1], starts[0]):
            core_starts = (c0, c1, c2)
            inputs = [axis.input_start(c) for axis, c in zip(self.axes, core_starts)]
            yield Tile(
                tuple(slice(i, i + axis.input_length) for i, axis in zip(inputs, self.axes)),
                tuple(slice(c, c + axis.core_length) for c, axis in zip(core_starts, self.axes)),
                tuple(slice(c - i, c - i + axis.core_length) for c, i, axis in zip(core_starts, inputs, self.axes)),
            )

    def blend_weights(self, tile: Tile) -> np.ndarray:
        """The weight of each core voxel of `tile`, already divided by the weights of all tiles there."""
        factors = [window / total[region] for window, total, region in zip(self._windows, self._sums,
                                                                            tile.output_region)]
        return (factors[0][:, None, None] * factors[1][None, :, None] * factors[2][None, None, :]).astype(np.float32)


def edge_padded(read: Callable[[Region], np.ndarray], shape: Sequence[int]) -> Callable[[Region], np.ndarray]:
    """`read` for regions that may reach past a volume of `shape`: what lies outside repeats the nearest edge
    voxel (NumPy's "edge" mode), so a scan that ends inside tissue is not given a wall of zeros there."""
    def read_padded(region: Region) -> np.ndarray:
        inside = tuple(slice(max(r.start, 0), min(r.stop, n)) for r, n in zip(region, shape))
        pads = [(i.start - r.start, r.stop - i.stop) for r, i in zip(region, inside)]
        data = np.asarray(read(inside))
        return np.pad(data, pads, mode="edge") if any(a or b for a, b in pads) else data

    return read_padded


def sliding_window_inference(
    read: Callable[[Region], np.ndarray],
    predict: Callable[[np.ndarray], np.ndarray],
    window: SlidingWindow,
    batch_size: int = 1,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run `predict` ([B, *input_shape] → same) over every tile of `window`; return the blended float32 volume.

    `read(region)` gives one tile's input; `transform` (e.g. denormalisation) is applied to each core before
    blending; `progress(done, total)` is told after each batch.
    """
    output = np.zeros(window.shape, np.float32)
    total, done = len(window), 0
    tiles = window.tiles()
    while True:
        batch = list(itertools.islice(tiles, batch_size))
        if not batch:
            break
        inputs = np.stack([np.asarray(read(tile.input_region), np.float32) for tile in batch])
        outputs = np.asarray(predict(inputs), np.float32)
        for tile, result in zip(batch, outputs):
            core = result[tile.core_in_input]
            if transform is not None:
                core = transform(core)
            output[tile.output_region] += core * window.blend_weights(tile)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return output
