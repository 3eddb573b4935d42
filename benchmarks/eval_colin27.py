"""Quality on Colin27 (never trained on): soupgan's generator against tricubic interpolation, the flow-guided
interpolation it refines and, thin-to-thin, the SOUP-GAN authors' released model (a thin-to-thin model), through
the library's whole-volume path (`model.reports.evaluation`).

Protocol (the reference numbers in BENCHMARKS.md use it): degrade the whole volume along its slice axis by s (decimation), bring it back
with each method (the intensity window is the whole thick volume's, as training records carry), score
RMSE/PSNR/SSIM on the 128x128 in-plane centre crop, all slices. Writes the Fig.-5-style plot, a comparison
grid and prints JSON with each method's voxel rate on this machine.

`--contrast t2-like` scores the same brain in another contrast: a fixed remap of Colin27's intensities (air stays
dark, CSF turns bright, white matter dark, as on a T2-weighted scan). The training augmentation draws random
remaps of this kind, so it measures an unseen brain in a contrast of a family seen in training, not real T2
physics (the noise, partial volume and T2 contrast of a real acquisition differ).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

from benchmarks.data import authors_model_path, colin27_path
from model.reports.evaluation import evaluate_scales, format_table, generator_methods
from model.reports.figures import plot_metrics_vs_scale
from model.reports.preview import display_window, plot_comparison
from model.weights.model_source import resolve_generator
from model.inference.reference_model import ReferenceModel
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN, parse_scales
from pipeline.io.nifti_io import read_nifti
from pipeline.volume import Volume

CONTRASTS = ("t1", "t2-like")


def t2_like(volume: Volume) -> Volume:
    """Colin27 in a T2-like contrast: x = intensity / p99.5, y = min(x / 0.15, 1) * (1.15 - x), continuous, so the
    remap adds no edges. On Colin27: air (x = 0) stays 0, CSF (x ~ 0.16) -> 0.99, grey matter (~0.45) -> 0.70, white
    matter (~0.6) -> 0.55."""
    x = volume.data / np.percentile(volume.data, 99.5)
    return volume.with_data((np.minimum(x / 0.15, 1.0) * np.clip(1.15 - x, 0.0, None) * 1000.0).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run folder or generator .keras (default: the shipped weights)")
    parser.add_argument("--scales", type=parse_scales, default=parse_scales("2,3,4,5,6"))
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--contrast", choices=CONTRASTS, default="t1", help="t2-like: a fixed T2-like remap of Colin27")
    parser.add_argument("--criterion", choices=(THIN_TO_THIN, THIN_TO_THICK), default=THIN_TO_THIN,
                        help="the degradation (the authors' model is thin-to-thin only: left out for thin-to-thick)")
    parser.add_argument("--no-authors", action="store_true", help="skip the authors' model")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    criterion = args.criterion
    generator = resolve_generator(args.model, criterion)
    methods = generator_methods(generator, criterion)
    if not args.no_authors and criterion == THIN_TO_THIN:
        authors = ReferenceModel(authors_model_path())
        methods["authors"] = lambda lr, s: authors(lr, s, THIN_TO_THIN)
    hr = read_nifti(colin27_path(), "MR")
    if args.contrast == "t2-like":
        hr = t2_like(hr)
    rows, views = evaluate_scales(hr, args.scales, criterion, methods, crop=args.crop,
                                  on_row=lambda row: print(json.dumps(row), flush=True))
    os.makedirs(args.out, exist_ok=True)
    name = "_".join(["colin27", *([args.contrast] if args.contrast != "t1" else []),
                     *([criterion] if criterion != THIN_TO_THIN else [])])
    plot_metrics_vs_scale(rows, os.path.join(args.out, f"{name}_metrics.png"),
                          f"Colin27 ({args.contrast}) {criterion}, centre {args.crop}²")
    plot_comparison(views, display_window(hr), os.path.join(args.out, f"{name}_comparison.png"))
    print(format_table(rows))
    print(json.dumps({"generator_parameters": generator.count_params(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
