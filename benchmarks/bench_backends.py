"""Stage-1 step time of `soupgan train --portable` under each Keras backend on this machine, side by side:
the recipe's generator and pairs (6 blocks, 16 filters, patch 40, batch 6, pairs from MNI152) under
TensorFlow (this interpreter) and under each `--backend NAME=PYTHON` (e.g. jax or torch, from an
interpreter that has it and this project's dependencies but TensorFlow).

Each backend runs in its own process (a Keras backend is fixed at import), one after another, with nothing
else running: --warmup steps (tracing, compilation), then the median of --steps timed steps, of which the
median over --repeats processes is reported. Pair drawing is timed apart from the step (NumPy, the same for
every backend). `--replicas N` runs TensorFlow's steps under MirroredStrategy over N logical CPU devices, as the
recipes train.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from soupgan.tensorflow_env import apply_tensorflow_defaults


def worker(args: argparse.Namespace) -> dict:
    """Time the portable trainer's steps under the backend this process was started with."""
    import keras

    from benchmarks.data import mni152_path
    from model.training.pixel_loss import PixelLoss
    from model.networks.generator import SoupGenerator
    from model.training.portable_sources import RandomPairBatches
    from model.training.run_setup import pair_sampler_config
    from model.training.train_config import TrainConfig
    from pipeline.data.random_pairs import RandomPairSampler
    from pipeline.io.volume_io import read_volume

    keras.config.set_dtype_policy(args.precision)
    scope = contextlib.nullcontext()
    if args.replicas > 1:  # tf.distribute: TensorFlow only (the backend --replicas is refused for otherwise)
        from model.training.distribution import make_strategy
        scope = make_strategy("mirrored", args.replicas).scope()
    config = TrainConfig(patch_size=args.patch_size, batch_size=args.batch_size, loss_margin=8)
    sampler = RandomPairSampler([read_volume(mni152_path())], pair_sampler_config(config))
    batches = RandomPairBatches(sampler, args.batch_size, args.warmup + args.steps, (0,))
    start = time.perf_counter()
    data = [batches[i] for i in range(len(batches))]
    draw = (time.perf_counter() - start) / len(batches)
    with scope:
        generator = SoupGenerator(filters=args.filters, blocks=args.blocks)
        size = args.patch_size
        generator.build({"image": (None, size, size, size, 1), "scale": (None,)})
        generator.compile(keras.optimizers.Adam(3e-4), loss=PixelLoss("mse", 8), jit_compile=args.jit_compile)
    if args.replicas > 1:
        times = fit_step_times(generator, data, args.batch_size)
    else:
        times = []
        for inputs, target in data:
            start = time.perf_counter()
            keras.ops.convert_to_numpy(generator.train_on_batch(inputs, target))  # waits for the device
            times.append(time.perf_counter() - start)
    return {"backend": keras.backend.backend(), "step_s": statistics.median(times[args.warmup:]), "draw_s": draw}


def fit_step_times(model, batches: list, batch_size: int) -> list[float]:
    """Seconds of each step of one `fit` pass over the batches as a tf.data set, as `soupgan train` feeds a strategy's
    replicas (`train_on_batch` under a strategy hands it host arrays every step: measured twice as slow)."""
    import keras
    import numpy as np
    import tensorflow as tf

    inputs = {key: np.concatenate([batch[0][key] for batch in batches]) for key in batches[0][0]}
    targets = np.concatenate([batch[1] for batch in batches])
    times = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: times.append(-time.perf_counter()),
        on_train_batch_end=lambda batch, logs: times.append(times.pop() + time.perf_counter()))
    model.fit(tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(batch_size), epochs=1, verbose=0,
              callbacks=[timer])
    return times


def backend_interpreter(text: str) -> tuple[str, str]:
    """"torch=/venv/bin/python" → ("torch", "/venv/bin/python")."""
    name, _, python = text.partition("=")
    if name not in ("jax", "torch", "tensorflow") or not python:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PYTHON with NAME jax, torch or tensorflow")
    return name, python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_interpreter, action="append", default=[], metavar="NAME=PYTHON",
                        help="also time Keras backend NAME (jax, torch) under interpreter PYTHON; repeatable")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--patch-size", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--replicas", type=int, default=1,
                        help="TensorFlow under MirroredStrategy over this many logical CPU devices, as the recipes train")
    parser.add_argument("--jit-compile", default="auto", type=lambda v: {"on": True, "off": False}.get(v, v))
    parser.add_argument("--also-onednn-off", action="store_true",
                        help="also time TensorFlow with TF_ENABLE_ONEDNN_OPTS=0 (its own default on CPUs without AVX-512)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replicas > 1 and args.backend:
        parser.error("--replicas is tf.distribute, TensorFlow only: leave out --backend")
    if args.worker:
        print(json.dumps(worker(args)))
        return
    apply_tensorflow_defaults()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    variants = {"tensorflow": (sys.executable, "tensorflow", {})}  # name: (interpreter, KERAS_BACKEND, environment)
    if args.also_onednn_off:
        variants["tensorflow, oneDNN off"] = (sys.executable, "tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "0"})
    variants.update({backend: (python, backend, {}) for backend, python in args.backend})
    results = {}
    for name, (python, backend, environment) in variants.items():
        runs = []
        for _ in range(args.repeats):
            output = subprocess.run([python, "-m", "benchmarks.bench_backends", "--worker", *sys.argv[1:]], check=True,
                                    capture_output=True, text=True, cwd=root,
                                    env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": root, **environment})
            runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
            print(name, runs[-1], flush=True)
        results[name] = {"step_s": statistics.median(r["step_s"] for r in runs),
                         "draw_s": statistics.median(r["draw_s"] for r in runs)}
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "backend", "also_onednn_off")},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
