"""Where `soupgan upsample` spends its time: every phase of one run, and the network's FLOPs against this CPU's
measured float32 matrix-multiply rate.

Colin27 x4 thin-to-thin (every 4th slice kept, as `bench_upsample`), the shipped default generator. Start-up is
a fresh interpreter importing the CLI's modules and TensorFlow (a child process, --repeats times, median); the
other phases run in this process with the library's own pieces, in the order `upsample` runs them: read,
window, the generator's input (flow-guided: TV-L1 between every pair of thick slices, on threads), tile inputs
(slicing and edge padding), network (the compiled generator on every tile), stitching (cores denormalised and
written into the output), consistency, the clip to the input's range, write. The network runs once untimed
first, so graph tracing counts as start-up, as in a served model. FLOPs: 2 × the multiply-adds of every
convolution per output voxel (useful), and the same over every tile's input (computed: the halos are computed
and dropped); the CPU's rate is NumPy's float32 matmul of 2048² matrices on all cores (best of 5).
`--tile D,H,W` sets the tile cores (default: those `upsample` picks, `model.inference.super_resolve.TILE_INPUT_VOXELS`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.bench_upsample import make_inputs

STARTUP = "import soupgan.cli, tensorflow, keras, model.inference.super_resolve"


def startup_seconds(repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", STARTUP], check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def matmul_gflops() -> float:
    a = np.random.default_rng(0).random((2048, 2048), np.float32)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best / 1e9


def flops_per_voxel(generator) -> float:
    """2 × multiply-adds of every convolution at one output voxel (a per-scale kernel counts once)."""
    macs = 0
    for weight in generator.weights:
        if len(weight.shape) in (5, 6) and weight.path.endswith("kernel"):
            macs += int(np.prod(weight.shape[-5:]))
    return 2.0 * macs


def profile(path: str, tile: tuple[int, int, int] | None, out: str) -> dict:
    from model.networks.generator import load_generator
    from model.weights.model_source import default_generator_path
    from model.inference.sliding_window import edge_padded, sliding_window_inference
    from model.inference.super_resolve import FlowUpsampledVolume, Tiling, compiled_predictor, thin_volume
    from pipeline.method.consistency import make_consistent
    from pipeline.io.encoding import in_input_range
    from pipeline.method.normalization import robust_window
    from pipeline.io.volume_io import read_encoding, read_volume, write_volume

    times: dict[str, float] = {}

    def timed(name, function, *args):
        start = time.perf_counter()
        result = function(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
        return result

    generator = load_generator(default_generator_path("thin-to-thin"))
    scale, criterion = 4.0, "thin-to-thin"
    volume = timed("read", read_volume, path)
    encoding = read_encoding(path)
    axis = volume.slice_axis()
    window = timed("window", robust_window, volume.data)
    source = timed("generator input (flow)", FlowUpsampledVolume, np.moveaxis(volume.data, axis, 0), scale,
                   criterion, window, generator.consistent_input)
    tiles = Tiling(tile).window(source.shape, generator.receptive_field)
    predict = compiled_predictor(generator, scale)
    read = edge_padded(source, source.shape)
    predict(np.asarray(read(next(tiles.tiles()).input_region), np.float32)[None])  # trace once
    computed = sum(int(np.prod([r.stop - r.start for r in t.input_region])) for t in tiles.tiles())
    start = time.perf_counter()
    output = sliding_window_inference(lambda region: timed("tile inputs", read, region),
                                      lambda batch: timed("network", predict, batch), tiles,
                                      transform=window.denormalize)
    times["stitching"] = time.perf_counter() - start - times["tile inputs"] - times["network"]
    result = thin_volume(volume, output, scale, criterion, axis)
    timed("consistency", make_consistent, result.data, volume.data, scale, criterion, axis)
    timed("clip to the input's range", in_input_range, result, volume, encoding)
    timed("write", write_volume, result, out, encoding, True)
    per_voxel = flops_per_voxel(generator)
    return {"tile": tuple(axis.core_length for axis in tiles.axes), "times": times, "output_voxels": int(output.size), "computed_voxels": computed,
            "flops_per_output_voxel": per_voxel, "tiles": len(tiles)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="start-up runs (median)")
    parser.add_argument("--tile", default=None, help="tile cores D,H,W (slice axis first)")
    args = parser.parse_args()
    from soupgan.tensorflow_env import apply_tensorflow_defaults

    apply_tensorflow_defaults()  # before anything imports TensorFlow, as the CLI does
    tile = tuple(int(n) for n in args.tile.split(",")) if args.tile else None
    with tempfile.TemporaryDirectory() as folder:
        path = make_inputs(folder)["colin27"]
        startup = startup_seconds(args.repeats)
        gflops = matmul_gflops()
        result = profile(path, tile, os.path.join(folder, "thin.nii.gz"))
    network = result["times"]["network"]
    useful = result["output_voxels"] * result["flops_per_output_voxel"] / network / 1e9
    computed = result["computed_voxels"] * result["flops_per_output_voxel"] / network / 1e9
    total = startup + sum(result["times"].values())
    print(f"tile cores {result['tile']}, {result['tiles']} tiles, halo work ×{result['computed_voxels'] / result['output_voxels']:.2f}")
    print("| phase | seconds | share |\n| --- | --- | --- |")
    for name, seconds in [("start-up (imports)", startup), *result["times"].items()]:
        print(f"| {name} | {seconds:.2f} | {seconds / total:.0%} |")
    print(f"| total | {total:.2f} | |")
    import resource

    print(json.dumps({"tile": result["tile"], "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2), "matmul_gflops": round(gflops, 1),
                      "mflop_per_output_voxel": round(result["flops_per_output_voxel"] / 1e6, 4),
                      "network_useful_gflops": round(useful, 1), "network_computed_gflops": round(computed, 1),
                      "useful_fraction_of_matmul": round(useful / gflops, 3),
                      "computed_fraction_of_matmul": round(computed / gflops, 3)}))


if __name__ == "__main__":
    main()
