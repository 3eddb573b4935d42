"""A request to an exported model in parts, for volumes whose thin-slice output is too large for one message
(gRPC) or one call's voxel limit, with the result of one call on the whole volume. Every part is normalised
with the whole volume's window (the `with_window` signature), and how the volume is cut follows the
model's input (its `serving.export.servable_metadata`):
- a spline-input model gets in-plane tiles that keep the slice axis whole (the cubic prefilter along it is
  global), with a halo of the in-plane receptive field;
- a flow-guided model gets slabs of whole slices (the flow is estimated on whole slices), with a halo of
  thick slices that covers what a cut disturbs (`slab_halo`); slabs start on thick slices whose thin
  position is whole, so a fractional scale samples the same places.
Output voxels are counted as the graph counts them (thick voxels × scale), so no part is refused there.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable

import numpy as np

from model.inference.sliding_window import SlidingWindow, sliding_window_inference
from pipeline.errors import InputError
from pipeline.method.geometry import upsampled_length
from pipeline.method.normalization import robust_window

# Output voxels one call should hold: a call's peak is ~40 bytes per output voxel (the input, the flow-guided
# input, its padded copy, the assembled tiles and the consistent output; 4.2 GB at 104 M, BENCHMARKS.md)
PART_OUTPUT_VOXELS = 64_000_000
# run(volume, window): the thin volume; window None means "the model computes it from this volume"
Runner = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def upsample_in_parts(thick: np.ndarray, scale: float, criterion: str, run: Runner, max_output_voxels: int,
                      metadata: dict) -> np.ndarray:
    """A thick volume [Z, H, W] → the thin one through `run`, in as few parts as the limit allows."""
    thick = np.ascontiguousarray(thick, np.float32)
    if thick.size * scale <= max_output_voxels:
        return run(thick, None)
    window = robust_window(thick)
    bounds = np.array([window.low, window.high], np.float32)
    receptive_field = metadata["receptive_field"]
    if metadata["input_kind"] == "flow-guided":
        return _in_slabs(thick, scale, criterion, lambda part: run(part, bounds), max_output_voxels,
                         receptive_field[0])
    return _in_plane_tiles(thick, scale, criterion, lambda part: run(part, bounds), max_output_voxels,
                           max(receptive_field[1:]))


def _in_plane_tiles(thick: np.ndarray, scale: float, criterion: str, run: Callable[[np.ndarray], np.ndarray],
                    max_output_voxels: int, halo: int) -> np.ndarray:
    depth = upsampled_length(thick.shape[0], scale, criterion)
    counted = math.ceil(thick.shape[0] * scale)  # what the graph counts per in-plane voxel (>= depth)
    side = math.isqrt(max_output_voxels // counted) - 2 * halo  # in-plane core that keeps each tile under the limit
    if side < 8:
        raise InputError(f"{depth} thin slices leave no room for an in-plane tile under {max_output_voxels} output "
                         "voxels with this halo; raise the message or voxel limit")
    tiles = SlidingWindow((depth, *thick.shape[1:]), (depth, side, side), (0, halo, halo), blending="constant")
    return sliding_window_inference(lambda region: thick[(slice(None), *region[1:])],
                                    lambda batch: np.stack([run(tile) for tile in batch]), tiles)


def slab_halo(scale: float, slice_reach: int) -> int:
    """Thick slices of context each side of a slab. A cut disturbs the thin slices past the slab's last thick
    slice (positions clipped there), and restoring slab means at a fractional scale p/q couples blocks of q
    thick slices, so the whole last block is off; the generator reaches `slice_reach` thin slices further,
    and the final restore widens that to whole blocks again: q·(1 + ⌈reach / (q·s)⌉) thick slices."""
    step = slab_alignment(scale)
    return step * (1 + math.ceil(slice_reach / (step * scale)))


def slab_alignment(scale: float) -> int:
    """The smallest number of thick slices that spans a whole number of thin ones (2 for x2.5)."""
    return Fraction(scale).limit_denominator(1000).denominator


def _in_slabs(thick: np.ndarray, scale: float, criterion: str, run: Callable[[np.ndarray], np.ndarray],
              max_output_voxels: int, slice_reach: int) -> np.ndarray:
    slices, height, width = thick.shape
    step, halo = slab_alignment(scale), slab_halo(scale, slice_reach)
    core = (int(max_output_voxels // (height * width) / scale) - 2 * halo) // step * step
    if core < step:
        raise InputError(f"a flow-guided model cuts a volume into slabs of whole slices, at x{scale:g} at least "
                         f"{step + 2 * halo} thick slices of {height} x {width} with their halo: over {max_output_voxels}"
                         " output voxels a call; raise --max-message-mb, or run the model in process")
    length = upsampled_length(slices, scale, criterion)
    thin = np.empty((length, height, width), np.float32)
    for first in range(0, slices, core):
        last = min(first + core, slices)
        start, stop = max(0, first - halo), min(slices, last + halo)
        part = run(thick[start:stop])
        offset = round(start * scale)
        begin, end = round(first * scale), (length if last == slices else round(last * scale))
        thin[begin:end] = part[begin - offset:end - offset]
    return thin
