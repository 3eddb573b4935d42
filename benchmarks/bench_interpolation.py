"""Cubic pre-upsampling along the slice axis on a real 1 mm T1: soupgan's matrix form vs the usual SciPy calls.

Baselines (same cubic B-spline, mirror boundaries):
- scipy.ndimage.zoom(lr, (1, 1, s), order=3): the common way to upsample one axis (it still runs the
  3D machinery: spline prefilter on every axis, 4x4x4 taps);
- scipy.ndimage.map_coordinates on the full output grid: the literal definition soupgan is tested against.
Candidates: pipeline.method.interpolation.upsample (NumPy: SciPy's 1D prefilter along the slice axis, then four
taps) and pipeline.graph.graph_ops.upsample_tf inside a tf.function (the serving graph's op: one matrix product).
Runs are interleaved; the median of --repeats runs is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

import numpy as np
import tensorflow as tf
from scipy import ndimage

from benchmarks.data import mni152_path
from pipeline.method.degradation import degrade
from pipeline.method.geometry import upsampled_positions
from pipeline.graph.graph_ops import upsample_tf
from pipeline.method.interpolation import upsample
from pipeline.io.nifti_io import read_nifti

CRITERION = "thin-to-thin"


def candidates(lr: np.ndarray, scale: int):
    positions = upsampled_positions(lr.shape[2], scale, CRITERION)
    graph = tf.function(
        lambda v: upsample_tf(v, scale, CRITERION, axis=2),
        input_signature=[tf.TensorSpec([None, None, None], tf.float32)],
        autograph=False,
    )
    graph(lr)  # trace once; serving traces at export time

    def literal():
        grid = np.meshgrid(np.arange(lr.shape[0]), np.arange(lr.shape[1]), positions, indexing="ij", sparse=False)
        return ndimage.map_coordinates(lr, grid, order=3, mode="mirror")

    return {
        "scipy.ndimage.zoom (baseline)": lambda: ndimage.zoom(lr, (1, 1, len(positions) / lr.shape[2]), order=3, mode="mirror"),
        "scipy map_coordinates (definition)": literal,
        "soupgan NumPy (prefilter + 4 taps)": lambda: upsample(lr, scale, CRITERION, axis=2),
        "soupgan TF graph (CPU)": lambda: graph(lr).numpy(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="2,4,6")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    hr = read_nifti(mni152_path()).data
    results = []
    for scale in (int(s) for s in args.scales.split(",")):
        lr = degrade(hr, scale, CRITERION, axis=2)
        runs = candidates(lr, scale)
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                out = run()
                times[name].append(time.perf_counter() - start)
        voxels = out.size
        baseline = statistics.median(times["scipy.ndimage.zoom (baseline)"])
        for name, samples in times.items():
            median = statistics.median(samples)
            results.append({"scale": scale, "lr_shape": list(lr.shape), "method": name, "median_s": round(median, 4),
                            "mvoxel_per_s": round(voxels / median / 1e6, 1), "speedup_vs_zoom": round(baseline / median, 2)})
            print(f"s={scale} {str(lr.shape):16s} {name:36s} {median:8.3f} s  {voxels / median / 1e6:8.1f} Mvox/s  x{baseline / median:6.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                       "repeats": args.repeats, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
