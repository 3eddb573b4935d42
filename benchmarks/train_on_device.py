"""Train the thin-to-thin generator for as many steps as fit a wall-clock budget, in one call on a GPU machine
used for a short, fixed time (e.g. 15 minutes, its start included): measure, size the run, train, hand back.

The run is `soupgan train --portable` (Keras fit, here under KERAS_BACKEND=jax; the image has no TensorFlow)
from the recipe's training scans, by default a log-MSE fine-tune of the shipped generator on a cosine schedule,
on the input its --init was trained on (the shipped one takes flow-guided input: scikit-image, which the
image holds, estimates it in the data workers; `--flow-input` for a new generator).
Before it, a probe times the first step (XLA compile), the steady step and one batch drawn on one core; the
epochs are then what the rest of the budget holds at the slower of the step and the `--data-workers`' draw
rate. The finished generator, history.csv, curves.png, config.json and device.json (probe, plan, outcome)
go to --out. Prepare the carried files here with `python -m benchmarks.device_bundle`, which prints the call.
Runs on CPU under any backend too (the tests do, with a tiny generator).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time

from benchmarks.data import add_synthetic_arguments, recipe_scans

SHIPPED = os.path.join("model", "default_weights", "thin-to-thin.keras")
PROBE_STREAM = 999_983  # the probe's batches come from their own seed stream, not the run's
STARTUP_SECONDS = 15.0  # interpreter, imports and reading the scans in the training process, beyond the probe's
SAVE_SECONDS = 20.0  # the last epoch's checkpoint and generator, and copying the results
EPOCH_SECONDS = 1.0  # each epoch's end: checkpoint, generator, history and curves PNG written


@dataclasses.dataclass(frozen=True)
class Probe:
    first_step_seconds: float  # the first optimizer step: tracing and XLA compilation included
    step_seconds: float  # a steady optimizer step on a batch already drawn
    draw_seconds: float  # drawing one batch of pairs on one core


@dataclasses.dataclass(frozen=True)
class Plan:
    epochs: int
    steps: int
    seconds_per_step: float  # the slower of the step and the workers' draw rate (both, without workers)
    training_seconds: float  # what the budget leaves for the training steps
    process_seconds: float  # the training process's whole allowance: start, compile, steps, saves (its timeout)


def plan_run(budget_seconds: float, probe: Probe, data_workers: int, steps_per_epoch: int) -> Plan:
    """Whole epochs that fit `budget_seconds` of a fresh training process (at least one)."""
    per_step = (max(probe.step_seconds, probe.draw_seconds / data_workers) if data_workers
                else probe.step_seconds + probe.draw_seconds)  # drawn in the training process, between steps
    overhead = STARTUP_SECONDS + probe.first_step_seconds + SAVE_SECONDS
    training = budget_seconds - overhead
    epochs = max(1, math.floor(training / (per_step * steps_per_epoch + EPOCH_SECONDS)))
    return Plan(epochs, epochs * steps_per_epoch, per_step, training, training + overhead)


def measure(config, steps: int = 8) -> Probe:
    """Time `config`'s first and steady optimizer steps and one batch draw, in this process."""
    from model.networks.generator import dtype_policy
    from model.training.portable_sources import RandomPairBatches
    from model.training.portable_training import compiled_generator
    from model.training.run_setup import pair_sampler_config
    from pipeline.data.random_pairs import RandomPairSampler
    from pipeline.io.volume_io import read_volume

    sampler_config = pair_sampler_config(config)
    sampler = RandomPairSampler([read_volume(path) for path in config.volumes], sampler_config)
    batches = RandomPairBatches(sampler, config.batch_size, 3, (config.seed, PROBE_STREAM))
    started = time.perf_counter()
    drawn = [batches[index] for index in range(len(batches))]
    draw = (time.perf_counter() - started) / len(drawn)
    with dtype_policy(config.precision):
        generator = compiled_generator(config, sampler_config.patch_shape, steps + 1)
        started = time.perf_counter()
        generator.train_on_batch(*drawn[0])  # returns the loss as NumPy: the step has finished
        first = time.perf_counter() - started
        started = time.perf_counter()
        for index in range(steps):
            generator.train_on_batch(*drawn[index % len(drawn)])
        step = (time.perf_counter() - started) / steps
    return Probe(first, step, draw)


def takes_flow_input(args: argparse.Namespace) -> bool:
    """Whether the run trains on flow-guided input: asked for, or what the --init generator was trained on."""
    if args.flow_input or args.init == "none":
        return args.flow_input
    from model.networks.generator import load_generator

    return load_generator(args.init).flow_input


def train_arguments(args: argparse.Namespace, work: str, epochs: int) -> list[str]:
    """`soupgan train` flags of the run."""
    return ["train", "--portable", "--volumes", *recipe_scans(args),
            "--out", work, "--criterion", "thin-to-thin", "--epochs", str(epochs),
            "--steps-per-epoch", str(args.steps_per_epoch), "--batch-size", str(args.batch_size),
            "--patch-size", str(args.patch_size), "--loss-margin", str(args.loss_margin),
            "--pixel-loss", args.pixel_loss, "--lr-schedule", "cosine", "--learning-rate", str(args.learning_rate),
            "--precision", args.precision, "--seed", str(args.seed), "--data-workers", str(args.data_workers),
            *(["--flow-input"] if args.flow_input else []),
            *(["--scales", args.scales] if args.scales else []),
            *(["--init", args.init] if args.init != "none" else
              ["--filters", str(args.filters), "--blocks", str(args.blocks)])]


def device_description() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return ", ".join(sorted({device.device_kind for device in jax.devices()}))
    return keras.backend.backend()


def main() -> None:
    started = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of the whole script")
    parser.add_argument("--out", default=os.environ.get("OUT", "runs/device"), help="results go here")
    parser.add_argument("--work", default="runs/device-train", help="the training run's folder (a fresh one)")
    parser.add_argument("--init", default=SHIPPED, help="generator to fine-tune, or 'none' to train a new one")
    parser.add_argument("--filters", type=int, default=16, help="a new generator's width (--init none)")
    parser.add_argument("--blocks", type=int, default=6, help="a new generator's residual blocks (--init none)")
    parser.add_argument("--flow-input", action="store_true",
                        help="train on flow-guided input (implied by an --init generator trained on it)")
    parser.add_argument("--pixel-loss", default="log-mse", choices=("mse", "log-mse"))
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="peak of the cosine schedule")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=40)
    parser.add_argument("--scales", help="the scales pairs are drawn at, ratios p/q too (default 2,3,4,5,6)")
    parser.add_argument("--loss-margin", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--data-workers", type=int, default=max((os.cpu_count() or 1) - 1, 0))
    parser.add_argument("--seed", type=int, default=21)
    add_synthetic_arguments(parser, default=3)  # carried or made here; the shipped default's last stages had 3
    args = parser.parse_args()
    args.flow_input = takes_flow_input(args)  # once: train_arguments is built for the probe and for the run

    from soupgan.commands.train import add_train_arguments, config_from_args
    from soupgan.tensorflow_env import apply_tensorflow_defaults

    apply_tensorflow_defaults()  # where the backend is TensorFlow (CPU), as `soupgan` itself does
    if os.path.exists(args.work):
        parser.error(f"--work {args.work} exists: give a fresh folder (this script sizes one whole run)")
    probe_parser = argparse.ArgumentParser()
    add_train_arguments(probe_parser)
    config = config_from_args(probe_parser.parse_args(train_arguments(args, args.work, 1)[1:]))
    print(f"probing {device_description()}: batch {args.batch_size} of {args.patch_size}³ ...", flush=True)
    probe = measure(config)
    plan = plan_run(args.minutes * 60 - (time.monotonic() - started), probe, args.data_workers, args.steps_per_epoch)
    print(json.dumps({"probe": dataclasses.asdict(probe), "plan": dataclasses.asdict(plan)}), flush=True)

    command = [sys.executable, "-m", "soupgan", *train_arguments(args, args.work, plan.epochs)]
    print("$", " ".join(command[1:]), flush=True)
    try:
        outcome = subprocess.run(command, timeout=plan.process_seconds).returncode
    except subprocess.TimeoutExpired:
        outcome = "stopped at the budget: the last finished epoch's generator is kept"
    seconds = time.monotonic() - started
    os.makedirs(args.out, exist_ok=True)
    copied = []
    for name, target in (("last_generator.keras", "thin-to-thin.keras"), ("history.csv", "history.csv"),
                         ("curves.png", "curves.png"), ("config.json", "config.json")):
        if os.path.exists(os.path.join(args.work, name)):
            shutil.copyfile(os.path.join(args.work, name), os.path.join(args.out, target))
            copied.append(target)
    report = {"device": device_description(), "probe": dataclasses.asdict(probe), "plan": dataclasses.asdict(plan),
              "outcome": outcome, "seconds": round(seconds, 1), "files": copied}
    with open(os.path.join(args.out, "device.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report), flush=True)
    if outcome != 0 and "thin-to-thin.keras" not in copied:
        sys.exit(f"training failed ({outcome}) before any epoch finished")


if __name__ == "__main__":
    main()
