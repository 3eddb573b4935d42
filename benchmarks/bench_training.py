"""Training throughput on this machine: stage-1 and stage-2 steps/s, and the tf.data input rate against
the rate the step consumes (goal: input >= 5x faster), on real shards of MNI152 from `soupgan shards`.
`--sources`: instead, stage-1 s/step of the shipped generator's architecture on flow-guided inputs from
shards (`train --data`) against pairs drawn and flow-interpolated on the fly (`train --volumes --flow-input`),
both through `soupgan train`'s own sources, alternating. `--readers`: the input rate of the TensorFlow-free
shard reader (`soupgan train --portable --data`) against tf.data's on the same shards, alternating.

Baseline for the input: the training step itself (patch pairs per second it consumes). Each stage is
timed over --steps steps after --warmup steps (tracing), per step; medians are reported. Stages and
the input are measured in the same process, one after another, with nothing else running.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

import keras
import tensorflow as tf

from benchmarks.data import mni152_path
from model.training.inputs import training_dataset
from model.training.sources import training_source
from model.training.train_config import TrainConfig
from model.training.trainer import build_trainer
from pipeline.config import PATCH_SIZE, THIN_TO_THIN
from pipeline.data.prefetch import Prefetcher
from pipeline.data.shard_reader import read_local_manifest, split_files, training_batches


class StepTimes(keras.callbacks.Callback):
    """Wall time of every training step."""

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.times = []


def make_shards(folder: str) -> str:
    """MNI152 → thin-to-thin shards (all scales, flow-guided inputs), the way users make them."""
    output = os.path.join(folder, "shards")
    subprocess.run([sys.executable, "-m", "soupgan", "shards", mni152_path(), "--output", output, "--split", "1,0,0",
                    "--criteria", THIN_TO_THIN], check=True, capture_output=True)
    return output


def input_rate(data: str, batch_size: int, batches: int) -> float:
    """Patch pairs per second that training_dataset delivers (after its shuffle buffer has filled)."""
    iterator = iter(training_dataset(data, "train", batch_size, THIN_TO_THIN, PATCH_SIZE, repeat=True, seed=0))
    for _ in range(10):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def step_seconds(data: str, config: TrainConfig, warmup: int, steps: int) -> float:
    """Median seconds per training step of the stage `config` describes."""
    trainer = build_trainer(config, (PATCH_SIZE,) * 3)
    dataset = training_dataset(data, "train", config.batch_size, THIN_TO_THIN, PATCH_SIZE, repeat=True, seed=0)
    timer = StepTimes()
    trainer.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0, shuffle=False)
    return statistics.median(timer.times[warmup:])


def source_step_seconds(config: TrainConfig, warmup: int, steps: int) -> float:
    """Median seconds per stage-1 step with `soupgan train`'s own source for `config` (shards or volumes)."""
    source = training_source(config)
    trainer = build_trainer(config, source.patch_shape)
    timer = StepTimes()
    trainer.fit(source.train(0, 0), epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0,
                shuffle=False)
    return statistics.median(timer.times[warmup:])


def source_input_rate(config: TrainConfig, batches: int) -> float:
    """Patch pairs per second `soupgan train`'s source for `config` delivers alone (no step consuming them):
    the bound on a device whose step is faster than the input."""
    iterator = iter(training_source(config).train(0, 0))
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * config.batch_size / (time.perf_counter() - start)


def compare_sources(data: str, args: argparse.Namespace) -> None:
    """--data (flow-guided shards) against --volumes --flow-input, each `--repeats` times, alternating: the
    step time on this machine and the input rate alone."""
    shipped = dict(filters=16, blocks=6, batch_size=args.batch_size, flow_input=True)
    configs = {"--data (flow-guided shards)": TrainConfig(data=data, **shipped),
               "--volumes --flow-input": TrainConfig(volumes=[mni152_path()], steps_per_epoch=1, **shipped)}
    times, rates = {name: [] for name in configs}, {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, config in configs.items():
            times[name].append(source_step_seconds(config, args.warmup, args.steps))
            rates[name].append(source_input_rate(config, args.steps))
            print(f"{name:30s} {times[name][-1]:6.3f} s/step, input alone {rates[name][-1]:7.1f} pairs/s",
                  file=sys.stderr, flush=True)
    step = {name: statistics.median(values) for name, values in times.items()}
    rate = {name: statistics.median(values) for name, values in rates.items()}
    slow = "--volumes --flow-input"
    print(f"{'source':30s} {'s/step':>7s} {'step runs':>22s} {'speed-up':>9s} {'input pairs/s':>14s} {'speed-up':>9s}")
    for name in configs:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"{name:30s} {step[name]:7.3f} {runs:>22s} {step[slow] / step[name]:8.1f}x {rate[name]:14.1f} "
              f"{rate[name] / rate[slow]:8.1f}x")


def _pairs_per_second(batches, batch_size: int, count: int) -> float:
    """Pairs per second over `count` batches of an iterator, after a first batch (its files opened)."""
    next(batches)
    start = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * batch_size / (time.perf_counter() - start)


def compare_readers(data: str, args: argparse.Namespace) -> None:
    """tf.data (`soupgan train --data`) against the TensorFlow-free reader read ahead in a thread (`--portable
    --data`), each `--repeats` times, alternating, over `--batches` thin-to-thin batches: pairs per second."""
    manifest = read_local_manifest(data)
    files, patch = split_files(data, "train"), int(manifest["patch_size"])
    version = int(manifest.get("schema_version", 1))
    readers = {
        "tf.data (train --data)": lambda: iter(training_dataset(data, "train", args.batch_size, THIN_TO_THIN, patch,
                                                                 repeat=True, seed=0, schema_version=version)),
        "TensorFlow-free (--portable --data)": lambda: Prefetcher(training_batches(
            files, THIN_TO_THIN, args.batch_size, version, patch, seed=0)),
    }
    rates = {name: [] for name in readers}
    for _ in range(args.repeats):
        for name, make in readers.items():
            batches = make()
            rates[name].append(_pairs_per_second(batches, args.batch_size, args.batches))
            if isinstance(batches, Prefetcher):
                batches.close()
            print(f"{name:36s} {rates[name][-1]:7.1f} pairs/s", file=sys.stderr, flush=True)
    baseline = statistics.median(rates["tf.data (train --data)"])
    print(f"{'reader':36s} {'pairs/s (runs)':>28s} {'median':>8s} {'ratio':>6s}")
    for name, values in rates.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:36s} {runs:>28s} {statistics.median(values):8.1f} {statistics.median(values) / baseline:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a shard set (default: make one from MNI152)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--perceptual-slices", type=int, default=8, help="stage 2 is also timed with all slices")
    parser.add_argument("--sources", action="store_true", help="compare --data with --volumes --flow-input")
    parser.add_argument("--readers", action="store_true", help="the TensorFlow-free shard reader against tf.data")
    parser.add_argument("--batches", type=int, default=300, help="--readers: batches timed per run")
    parser.add_argument("--repeats", type=int, default=3, help="--sources, --readers: runs of each, alternating")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_shards(tmp)
        if args.sources:
            return compare_sources(data, args)
        if args.readers:
            return compare_readers(data, args)
        # Stage 2 from a fresh generator: the step costs the same as from a stage-1 one. VGG weights are
        # random (ImageNet's cannot be downloaded here); the cost is the same.
        stages = {
            "stage 1 (mse)": TrainConfig(data, tmp, batch_size=args.batch_size),
            f"stage 2 (gan, {args.perceptual_slices} slices/plane)": TrainConfig(
                data, tmp, stage="gan", batch_size=args.batch_size, vgg_weights="none",
                perceptual_slices=args.perceptual_slices),
            "stage 2 (gan, all slices)": TrainConfig(data, tmp, stage="gan", batch_size=args.batch_size,
                                                     vgg_weights="none"),
        }
        results = {"device": tf.config.list_physical_devices("GPU")[0].name if tf.config.list_physical_devices("GPU")
                   else platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                   "batch_size": args.batch_size, "patch": PATCH_SIZE, "stages": {}}
        results["input_pairs_per_s"] = input_rate(data, args.batch_size, batches=600)  # > the shuffle buffer
        for name, config in stages.items():
            seconds = step_seconds(data, config, args.warmup, args.steps)
            consumed = args.batch_size / seconds
            results["stages"][name] = {
                "seconds_per_step": seconds, "steps_per_s": 1 / seconds, "pairs_per_s": consumed,
                "input_over_step": results["input_pairs_per_s"] / consumed,
            }
            print(f"{name:34s} {1 / seconds:7.3f} steps/s  {consumed:7.2f} pairs/s  "
                  f"input {results['input_pairs_per_s'] / consumed:6.1f}x faster", flush=True)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
