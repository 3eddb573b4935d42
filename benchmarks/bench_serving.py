"""Serving, measured: the export's result against in-process `soupgan upsample`, peak memory of every path, and
concurrent clients against the test stand-in server.

1. Exactness and memory, x4 thin-to-thin with the shipped default (exported by `soupgan export --scales 4`):
   the MNI152 T1 with every 4th slice along its last axis kept, and the 512x512x100 CT-like volume of
   `bench_upsample`. Each goes through `soupgan upsample` in process, `--model EXPORT` and `--server` (the
   stand-in in a process of its own, started fresh per input), float32 outputs; the largest difference from
   the in-process result as a fraction of its range, wall time and peak RSS of each process (and the server's).
2. Load: N = 1, 4, 16 clients (threads, one gRPC channel each) sending --requests volumes in all (a 64x64
   in-plane crop of the MNI152 input, 46 slices → 181), against the stand-in: throughput, p50/p99 latency
   of a whole `upsample_array` (status, metadata, volume), and every answer against the in-process result.
The stand-in is Python gRPC around `tf.saved_model.load` (tests/serving/standin_server.py), not
tensorflow_model_server's C++ server, whose binary cannot be installed here: the load table measures the
protocol, the client and the graph, not TF Serving's scheduling.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import nibabel as nib
import numpy as np

from benchmarks.bench_upsample import make_inputs, measure
from benchmarks.data import mni152_path
from soupgan.tensorflow_env import apply_tensorflow_defaults

SCALE = 4
TOLERANCE = 1e-3  # of the in-process output's range


def soupgan(*args: str) -> list[str]:
    return [sys.executable, "-m", "soupgan", *args]


def start_server(base: str) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "tests.serving.standin_server", base], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    return server, server.stdout.readline().strip()


def stop_server(server: subprocess.Popen) -> float:
    """Stop the stand-in; its peak RSS in GB (VmHWM)."""
    with open(f"/proc/{server.pid}/status", encoding="ascii") as handle:
        peak_kb = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    server.terminate()
    server.wait(30)
    return peak_kb / 1e6


def float_data(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).get_fdata(dtype=np.float32))


def mni152_input(folder: str) -> str:
    from pipeline.method.degradation import degrade_volume
    from pipeline.io.nifti_io import read_nifti, write_nifti

    path = os.path.join(folder, "mni152_x4.nii.gz")
    write_nifti(degrade_volume(read_nifti(mni152_path(), "MR"), SCALE, "thin-to-thin", axis=2), path)
    return path


def paths_side_by_side(name: str, source: str, base: str, folder: str) -> list[dict]:
    """One input through the three paths; rows with time, memory and the difference from in-process."""
    outputs = {path: os.path.join(folder, f"{name}_{path}.nii.gz") for path in ("in-process", "export", "server")}
    common = ["--scale", str(SCALE), "--dtype", "float32", "--force"]
    rows = []
    seconds, peak = measure(soupgan("upsample", source, outputs["in-process"], *common))
    rows.append({"input": name, "path": "in-process", "seconds": seconds, "peak_gb": peak})
    seconds, peak = measure(soupgan("upsample", source, outputs["export"], *common, "--model", base))
    rows.append({"input": name, "path": "--model EXPORT", "seconds": seconds, "peak_gb": peak})
    server, address = start_server(base)
    try:
        seconds, peak = measure(soupgan("upsample", source, outputs["server"], *common, "--server", address,
                                        "--timeout", "3600"))
    finally:
        server_peak = stop_server(server)
    rows.append({"input": name, "path": "--server (client)", "seconds": seconds, "peak_gb": peak,
                 "server_peak_gb": server_peak})
    reference = float_data(outputs["in-process"])
    for row, path in zip(rows[1:], ("export", "server")):
        row["max_diff_of_range"] = float(np.abs(float_data(outputs[path]) - reference).max() / np.ptp(reference))
    return rows


def load_test(base: str, source: str, folder: str, clients: list[int], requests: int) -> list[dict]:
    from pipeline.io.encoding import value_bounds
    from pipeline.io.nifti_io import read_nifti, write_nifti
    from serving.client import ServingClient

    volume = read_nifti(source, "MR")
    crop = volume.with_data(np.ascontiguousarray(volume.data[59:123, 77:141, :]), volume.affine)
    crop_path, reference_path = os.path.join(folder, "crop.nii.gz"), os.path.join(folder, "crop_thin.nii.gz")
    write_nifti(crop, crop_path)
    subprocess.run(soupgan("upsample", crop_path, reference_path, "--scale", str(SCALE), "--dtype", "float32",
                           "--force"), check=True, capture_output=True)
    reference = np.moveaxis(float_data(reference_path), 2, 0)
    thick = np.moveaxis(crop.data, 2, 0).astype(np.float32)
    low, high = value_bounds(crop)  # the CLI keeps its outputs in the input's range; the served array is raw
    rows = []
    for count in clients:
        server, address = start_server(base)
        try:
            ServingClient(address).upsample_array(thick, SCALE, "thin-to-thin")  # loads the model once

            def one_client(share: int) -> list[tuple[float, float]]:
                client = ServingClient(address)
                answers = []
                for _ in range(share):
                    start = time.perf_counter()
                    thin = client.upsample_array(thick, SCALE, "thin-to-thin")
                    latency = time.perf_counter() - start
                    answers.append((latency, float(np.abs(np.clip(thin, low, high) - reference).max())))
                client.close()
                return answers

            shares = [requests // count + (i < requests % count) for i in range(count)]
            start = time.perf_counter()
            with ThreadPoolExecutor(count) as pool:
                answers = [answer for result in pool.map(one_client, shares) for answer in result]
            wall = time.perf_counter() - start
        finally:
            server_peak = stop_server(server)
        latencies = np.array([latency for latency, _ in answers])
        rows.append({"clients": count, "requests": len(answers), "wall_s": wall,
                     "volumes_per_min": 60 * len(answers) / wall, "p50_s": float(np.percentile(latencies, 50)),
                     "p99_s": float(np.percentile(latencies, 99)), "server_peak_gb": server_peak,
                     "max_diff_of_range": max(diff for _, diff in answers) / float(np.ptp(reference))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="mni152,ct512", help="mni152 and/or ct512 for the side-by-side paths")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=16, help="volumes per load row, shared by the clients")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    apply_tensorflow_defaults()  # every process, the stand-in server's too, with the project's TensorFlow settings
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "paths": [],
               "load": []}
    with tempfile.TemporaryDirectory() as folder:
        base = os.path.join(folder, "export")
        subprocess.run(soupgan("export", "--out", base, "--scales", str(SCALE)), check=True, capture_output=True)
        sources = {"mni152": mni152_input(folder)}
        if "ct512" in args.inputs:
            sources["ct512"] = make_inputs(folder)["ct512"]
        for name in filter(None, args.inputs.split(",")):
            for row in paths_side_by_side(name, sources[name], base, folder):
                results["paths"].append(row)
                print(json.dumps(row), flush=True)
        if args.clients:
            results["load"] = load_test(base, sources["mni152"], folder, [int(n) for n in args.clients.split(",")],
                                        args.requests)
    failures = [row for row in results["paths"] + results["load"] if row.get("max_diff_of_range", 0) > TOLERANCE]
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    if failures:
        sys.exit(f"{len(failures)} results differ from in-process by more than {TOLERANCE:g} of the range")


if __name__ == "__main__":
    main()
