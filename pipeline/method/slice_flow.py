"""Flow-guided slice interpolation: the thin slices between two measured slices made by warping both along the
in-plane optical flow between them and blending them by distance (registration-based interpolation).

Where an edge moves in-plane from one thick slice to the next (a sulcus, a vessel crossing obliquely), the
cubic spline blends two offset copies of it into a ghost; following the flow keeps one edge, moved part of
the way. Flow is TV-L1 (`skimage.registration.optical_flow_tvl1`, 3 warps of 5 iterations: a third of its
default time, within 0.05 dB on Colin27), computed between each pair of neighbouring thick slices on
intensities in the model's normalised units ([p0.5, p99.5] → [0, 1]; its data term's weight assumes them).
Each thin slice at LR position k + t (`pipeline.method.geometry`) is (1 − t)·A(x − t·v) + t·B(x + (1 − t)·v), with
A(x) ≈ B(x + v(x)); positions past the first or last thick slice (thin-to-thick's outer half slabs) take the
nearest one. Interpolation is local along the slice axis, so a range of thin slices needs only the thick
slices around it (training pairs use that).

That warp reads the flow at A's pixels, not at the thin slice's. `warp="intermediate"` instead estimates the
flows from the thin slice to A and to B from the forward and the backward flow (Jiang et al., Super SloMo,
CVPR 2018, eq. 4): twice the flow work, symmetric in A and B, not the default (`benchmarks/ablate_flow.py`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from pipeline.method.consistency import make_consistent
from pipeline.errors import VolumeShapeError
from pipeline.method.geometry import upsampled_affine, upsampled_positions
from pipeline.method.interpolation import upsample
from pipeline.method.normalization import IntensityWindow, robust_window
from pipeline.volume import Volume

FLOW_OPTIONS = {"num_warp": 3, "num_iter": 5}
WARPS = ("forward", "intermediate")
MEASURED_TOLERANCE = 1e-6  # a thin slice this close (in thick-slice units) to a thick one is that slice


def slice_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The in-plane flow v [2, H, W] with first(x) ≈ second(x + v(x))."""
    from skimage.registration import optical_flow_tvl1  # imported here: spline-only paths (the GPU image) lack it

    return optical_flow_tvl1(np.asarray(first, np.float32), np.asarray(second, np.float32), **FLOW_OPTIONS)


def thin_slice_flows(forward: np.ndarray, backward: np.ndarray | None, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(flow from the thin slice at `t` to A, to B), A(x) ≈ B(x + forward(x)), B(x) ≈ A(x + backward(x)): the
    forward flow scaled by distance, or with a backward flow Super SloMo's intermediate estimate."""
    if backward is None:
        return -t * forward, (1 - t) * forward
    return -(1 - t) * t * forward + t * t * backward, (1 - t) ** 2 * forward - t * (1 - t) * backward


def flow_upsample(data: np.ndarray, scale: float, criterion: str, axis: int,
                  thin_slices: slice | None = None, threads: int | None = None, warp: str = "forward") -> np.ndarray:
    """Flow-guided upsampling of normalised `data` along `axis` by `scale` (float32); `thin_slices`: only those
    thin slices (a training pair's range), from the thick slices around them. Pairs of thick slices run on
    `threads` threads (default: one per CPU; TV-L1 and the warps spend most of their time in NumPy and SciPy,
    outside the GIL); the result does not depend on how many. `warp`: one of `WARPS` (the module's docstring)."""
    if warp not in WARPS:
        raise ValueError(f"unknown warp {warp!r}; choose from {', '.join(WARPS)}")
    moved = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    n_lr = moved.shape[0]
    if n_lr < 2:
        raise VolumeShapeError(f"flow-guided interpolation needs at least 2 slices, got {n_lr}")
    positions = np.clip(upsampled_positions(n_lr, scale, criterion)[thin_slices or slice(None)], 0.0, n_lr - 1.0)
    lower = np.minimum(np.floor(positions).astype(np.int64), n_lr - 2)
    fractions = positions - lower
    measured = (fractions < MEASURED_TOLERANCE) | (fractions > 1 - MEASURED_TOLERANCE)
    out = np.empty((len(positions), *moved.shape[1:]), dtype=np.float32)
    out[measured] = moved[lower[measured] + np.round(fractions[measured]).astype(np.int64)]
    rows, columns = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in moved.shape[1:]), indexing="ij")

    def between(k: int) -> None:  # the thin slices strictly between thick slices k and k + 1
        forward = slice_flow(moved[k], moved[k + 1])
        backward = slice_flow(moved[k + 1], moved[k]) if warp == "intermediate" else None
        first, second = (ndimage.spline_filter(moved[i], order=3, mode="nearest") for i in (k, k + 1))
        for j in np.flatnonzero((lower == k) & ~measured):
            t = fractions[j]
            to_first, to_second = thin_slice_flows(forward, backward, t)
            out[j] = (1 - t) * ndimage.map_coordinates(first, [rows + to_first[0], columns + to_first[1]], order=3,
                                                       mode="nearest", prefilter=False)
            out[j] += t * ndimage.map_coordinates(second, [rows + to_second[0], columns + to_second[1]],
                                                  order=3, mode="nearest", prefilter=False)

    pairs = np.unique(lower[~measured])
    with ThreadPoolExecutor(max(1, min(len(pairs), threads or os.cpu_count() or 1))) as pool:
        list(pool.map(between, pairs))
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


def flow_upsample_volume(volume: Volume, scale: float, criterion: str, axis: int | None = None,
                         consistent: bool = False) -> Volume:
    """Flow-guided upsampling of a thick-slice volume in its own units (its [p0.5, p99.5] window for the flow),
    with the affine that places each thin slice: the input a flow-input generator refines (`consistent`: with
    thin-to-thick's slab means restored, as for a generator trained so)."""
    axis = volume.slice_axis(axis)
    window = robust_window(volume.data)
    thin = window.denormalize(input_upsample(window.normalize(volume.data), scale, criterion, axis, flow=True,
                                             consistent=consistent))
    return volume.with_data(thin, upsampled_affine(volume.affine, axis, scale, criterion))


def input_upsample(data: np.ndarray, scale: float, criterion: str, axis: int, flow: bool = False,
                   consistent: bool = False, threads: int | None = None) -> np.ndarray:
    """A generator's input on the thin grid: the cubic spline or the flow-guided interpolation (on `threads`), with
    thin-to-thick's slab means restored after it for a `consistent` generator (`model.networks.generator` records
    which it takes)."""
    thin = flow_upsample(data, scale, criterion, axis, threads=threads) if flow else upsample(data, scale, criterion, axis)
    return make_consistent(thin, data, scale, criterion, axis) if consistent else thin


def normalized_input(thick: np.ndarray, scale: float, criterion: str, window: IntensityWindow, flow: bool = False,
                     consistent: bool = False, threads: int | None = None) -> np.ndarray:
    """A generator's input in normalised units from thick slices (slice axis first), as inference and the shards
    job both make it: the flow runs on normalised slices (its data term assumes [0, 1]); the spline on raw ones,
    normalised after (so that inference may make it one in-plane column at a time)."""
    if flow:
        return input_upsample(window.normalize(thick), scale, criterion, 0, flow=True, consistent=consistent,
                              threads=threads)
    return window.normalize(input_upsample(thick, scale, criterion, 0, consistent=consistent))
