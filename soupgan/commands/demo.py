"""`soupgan demo`: the first thing to run. Super-resolves a thick-slice scan made from the built-in real T1
(nibabel's 2 mm anatomical.nii, every 4th slice kept: 8 mm slices) with the shipped model, and, since the
truth is known, scores it against tricubic. `--full` runs the whole product on it: shards → a short
training run → upsample → export (TF Serving SavedModels) → evaluate with that run's generator.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from pipeline.config import THIN_TO_THIN
from pipeline.io.safe_output import check_output
from soupgan.console import ProgressBar, example_volume_path, show_progress

DEMO_SCALE = 4
DEMO_FILES = ("thick_input.nii.gz", "tricubic.nii.gz", "soupgan.nii.gz", "preview.png")


def add_parser(commands) -> None:
    parser = commands.add_parser("demo", help="super-resolve the built-in example (--full: shards → train → upsample → export → evaluate)")
    parser.add_argument("--out", default="soupgan-demo", help="folder for the volumes, previews and metrics")
    parser.add_argument("--full", action="store_true", help="also run shards, a short training run and evaluate")
    parser.add_argument("--force", action="store_true", help="replace the files of an earlier demo in --out")
    parser.set_defaults(run=run)


def check_demo_outputs(args: argparse.Namespace) -> None:
    """The files the demo writes in --out (and, with --full, evaluate's): replaced only with --force."""
    from soupgan.commands.evaluate import RESULT_FILES

    paths = [os.path.join(args.out, name) for name in DEMO_FILES]
    if args.full:
        paths += [os.path.join(args.out, "evaluation", name) for name in RESULT_FILES]
    for path in paths:
        check_output(path, args.force, make_parents=True)


def run(args: argparse.Namespace) -> None:
    show_progress()
    check_demo_outputs(args)
    os.makedirs(args.out, exist_ok=True)
    model = _train_short_run(args.out) if args.full else None
    scores = _upsample_example(args.out, model, args.force)
    print(json.dumps(scores))
    if args.full:
        _soupgan("export", "--model", model, "--out", os.path.join(args.out, "export"), "--scales", "2,3,4")
        _soupgan("evaluate", example_volume_path(), "--scales", "2,3,4", "--model", model,
                 "--out", os.path.join(args.out, "evaluation"), *(["--force"] if args.force else []))


def _soupgan(*arguments: str) -> None:
    """Run one soupgan command as a user would (its own process and exit code)."""
    print(f"$ soupgan {' '.join(arguments)}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "soupgan", *arguments])
    if done.returncode:
        sys.exit(done.returncode)


def _train_short_run(out: str) -> str:
    """Shards of the example (16³ patches: it has 25 slices) and a short stage-1 run; returns the run folder."""
    shards, run = os.path.join(out, "shards"), os.path.join(out, "run")
    _soupgan("shards", example_volume_path(), "--output", shards, "--scales", "2,3,4", "--criteria", THIN_TO_THIN,
             "--patch-size", "16", "--stride", "8", "--split", "1,0,0", "--overwrite")
    _soupgan("train", "--data", shards, "--out", run, "--epochs", "3", "--steps-per-epoch", "30", "--batch-size", "8")
    return run


def _upsample_example(out: str, model: str | None, replace: bool) -> dict:
    """Thick input → tricubic and soupgan; NIfTIs in the scan's own type, a preview PNG with the truth row, and
    PSNR/SSIM against the real thin slices."""
    from model.reports.evaluation import score
    from model.weights.model_source import resolve_generator
    from model.reports.preview import plot_preview
    from model.inference.super_resolve import super_resolve
    from pipeline.method.degradation import degrade_volume
    from pipeline.io.encoding import in_input_range
    from pipeline.method.interpolation import upsample_volume
    from pipeline.io.volume_io import read_encoding, read_volume, write_volume

    truth = read_volume(example_volume_path(), modality="MR")
    encoding = read_encoding(example_volume_path())
    thick = degrade_volume(truth, DEMO_SCALE, THIN_TO_THIN)
    generator = resolve_generator(model, THIN_TO_THIN)
    results = {"thick input": thick, "tricubic": upsample_volume(thick, DEMO_SCALE, THIN_TO_THIN),
               "soupgan": super_resolve(thick, generator, DEMO_SCALE, progress=ProgressBar("demo"))}
    results = {name: in_input_range(volume, thick, encoding) for name, volume in results.items()}
    for name, volume in results.items():
        write_volume(volume, os.path.join(out, name.replace(" ", "_") + ".nii.gz"), encoding, replace)
    thin_slices = results["soupgan"].shape[2]
    shown = {"truth": truth.with_data(truth.data[..., :thin_slices]), **results}
    plot_preview(shown, os.path.join(out, "preview.png"), f"built-in T1, every {DEMO_SCALE}th slice kept, x{DEMO_SCALE}",
                 replace=replace)
    target = truth.data[..., :thin_slices]
    scores = {name: score(results[name].data, target) for name in ("tricubic", "soupgan")}
    return {"out": out, "scale": DEMO_SCALE, "thick_shape": list(thick.shape), "thin_shape": list(truth.shape),
            **{name: {"psnr": round(row["psnr"], 2), "ssim": round(row["ssim"], 4)} for name, row in scores.items()}}
