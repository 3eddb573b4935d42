"""In-plane tiling of a request to an exported model, for volumes whose thin-slice output is too large for one
message (gRPC) or one graph call (memory). The slice axis stays whole, so the cubic prefilter is exact per
tile, and every tile is normalised with the whole volume's window (the `with_window` signature); with a halo
of at least the generator's receptive radius the result equals one call on the whole volume."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from model.sliding_window import SlidingWindow, sliding_window_inference
from pipeline.errors import InputError
from pipeline.geometry import upsampled_length
from pipeline.normalization import robust_window

# run(volume, window): the thin volume; window None means "the model computes it from this volume"
Runner = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def upsample_tiled(thick: np.ndarray, scale: float, criterion: str, run: Runner, max_output_voxels: int,
                   halo: int) -> np.ndarray:
    """A thick volume [Z, H, W] → the thin one through `run`, in as few in-plane tiles as the limit allows."""
    thick = np.ascontiguousarray(thick, np.float32)
    depth = upsampled_length(thick.shape[0], scale, criterion)
    if depth * thick.shape[1] * thick.shape[2] <= max_output_voxels:
        return run(thick, None)
    side = math.isqrt(max_output_voxels // depth) - 2 * halo  # in-plane core that keeps each tile under the limit
    if side < 8:
        raise InputError(f"{depth} thin slices leave no room for an in-plane tile under {max_output_voxels} output "
                         "voxels with this halo; raise the message or voxel limit")
    window = robust_window(thick)
    bounds = np.array([window.low, window.high], np.float32)
    tiles = SlidingWindow((depth, *thick.shape[1:]), (depth, side, side), (0, halo, halo), blending="constant")
    return sliding_window_inference(lambda region: thick[(slice(None), *region[1:])],
                                    lambda batch: np.stack([run(tile, bounds) for tile in batch]), tiles)
