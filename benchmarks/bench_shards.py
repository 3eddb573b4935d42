"""Shards job throughput on real volumes: a plain single-process loop (baseline) vs Beam runners.

Each configuration runs in its own subprocess on the same inputs (copies of the MNI152 T1 template), in
interleaved order, and reports the job's wall time (imports and cluster start-up excluded), the bytes
of shards written and the peak RSS of its largest process. The parent prints medians.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from soupgan.tensorflow_env import apply_tensorflow_defaults

CONFIGS = ("plain loop", "DirectRunner x1", "DirectRunner x2", "DaskRunner x1", "DaskRunner x2",
           "DaskRunner x2 (no malloc trim)")
DASK = "--runner=apache_beam.runners.dask.dask_runner.DaskRunner"


def plain_loop(inputs: list[str], output: str, flags: argparse.Namespace) -> None:
    """What a script without Beam would do: the same pipeline/ calls, one GZIP shard per volume (TF's writer)."""
    import tensorflow as tf

    from beam_jobs.tfrecord_shard import GZIP_LEVEL
    from pipeline.io.nifti_io import read_nifti
    from pipeline.data.pairs import PairConfig, patch_pairs
    from pipeline.data.records import encode_example
    from pipeline.data.splits import assign_split

    config = PairConfig(scales=flags.scales, criteria=flags.criteria, input_kind=flags.input)
    options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=GZIP_LEVEL)  # same work as the job
    for index, path in enumerate(inputs):
        volume = read_nifti(path)
        split = assign_split(volume.volume_id)
        os.makedirs(os.path.join(output, split), exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(output, split, f"{split}-{index:05d}.tfrecord.gz"), options) as writer:
            for pair in patch_pairs(volume, config):
                writer.write(encode_example(pair))


def run_one(config: str, input_dir: str, output: str, flags: argparse.Namespace) -> dict:
    """Run one configuration in this process and measure it."""
    inputs = sorted(os.path.join(input_dir, name) for name in os.listdir(input_dir))
    job = [input_dir, "--output", output, "--scales", ",".join(map(str, flags.scales)), "--criteria", ",".join(flags.criteria),
           "--input", flags.input]
    cluster = None
    if config == "plain loop":
        import tensorflow  # noqa: F401  (import outside the timed region, as for Beam below)

        work = lambda: plain_loop(inputs, output, flags)  # noqa: E731
    else:
        from beam_jobs.shards import run

        if config == "DirectRunner x2":
            job += ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
        elif config.startswith("DaskRunner"):
            import dask
            from distributed import LocalCluster

            if config.endswith("(no malloc trim)"):  # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 for its workers
                dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
            workers = int(config.split()[1][1:])
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
            job += [DASK, f"--dask_client_address={cluster.scheduler_address}"]
        work = lambda: run(job)  # noqa: E731
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    if cluster is not None:
        cluster.close()
    written = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(output) for f in fs if f.endswith(".tfrecord.gz"))
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"config": config, "seconds": seconds, "bytes": written, "volumes": len(inputs), "peak_rss_mb": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of the MNI152 template to process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scales", type=lambda t: tuple(int(s) for s in t.split(",")), default=(2, 3, 4, 5, 6))
    parser.add_argument("--criteria", type=lambda t: tuple(t.split(",")), default=("thin-to-thin", "thin-to-thick"))
    parser.add_argument("--input", choices=("flow", "spline"), default="flow", help="the generator input stored")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--json", help="also write all runs here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: run this configuration
    parser.add_argument("--input-dir", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    flags = parser.parse_args()
    apply_tensorflow_defaults()
    if flags.one:
        print("RESULT " + json.dumps(run_one(flags.one, flags.input_dir, flags.output, flags)), flush=True)
        return

    from benchmarks.data import mni152_path

    work = tempfile.mkdtemp(prefix="soupgan-bench-")
    input_dir = os.path.join(work, "inputs")
    os.makedirs(input_dir)
    for copy in range(flags.copies):
        shutil.copy(mni152_path(), os.path.join(input_dir, f"mni{copy}.nii.gz"))
    runs = []
    configs = flags.configs.split(",")
    for repeat in range(flags.repeats):
        for config in configs:
            output = os.path.join(work, f"out-{repeat}-{config.replace(' ', '_')}")
            child = [sys.executable, "-m", "benchmarks.bench_shards", "--one", config, "--input-dir", input_dir, "--output", output,
                     "--scales", ",".join(map(str, flags.scales)), "--criteria", ",".join(flags.criteria),
                     "--input", flags.input]
            result = subprocess.run(child, capture_output=True, text=True)
            line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{config} failed:\n{result.stderr[-3000:]}")
            runs.append(json.loads(line[len("RESULT "):]))
            print(f"repeat {repeat} {config:16s} {runs[-1]['seconds']:7.1f} s", file=sys.stderr, flush=True)
            shutil.rmtree(output)
    baseline = statistics.median(r["seconds"] for r in runs if r["config"] == configs[0])

    def one_worker(config: str) -> float | None:  # the same runner with one worker
        single = f"{config.split()[0]} x1"
        return statistics.median(r["seconds"] for r in runs if r["config"] == single) if single in configs else None

    print(f"{'configuration':18s} {'median s':>9s} {'volumes/min':>12s} {'output MB/s':>12s} {'vs plain':>9s} {'vs x1':>7s} {'peak RSS MB':>12s}")
    for config in configs:
        mine = [r for r in runs if r["config"] == config]
        seconds = statistics.median(r["seconds"] for r in mine)
        megabytes = mine[0]["bytes"] / 1e6
        print(f"{config:18s} {seconds:9.1f} {mine[0]['volumes'] / seconds * 60:12.2f} {megabytes / seconds:12.1f} "
              f"{seconds / baseline:9.2f} {(one_worker(config) / seconds if one_worker(config) else float('nan')):7.2f} "
              f"{max(r['peak_rss_mb'] for r in mine):12.0f}")
    if flags.json:
        with open(flags.json, "w") as handle:
            json.dump(runs, handle, indent=1)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
