"""Does the generator learn? A trained run evaluated on Colin27 (never trained on), thin-to-thin, against
tricubic interpolation (TCI) and, where it can be fetched, the SOUP-GAN authors' released model.

Protocol (as in ARCHITECTURE.md): 128x128 in-plane centre crop, all slices; degrade along the slice
axis by s (decimation), cubic back to the thin grid, then each method; RMSE/PSNR/SSIM against the
original on the slices the thin grid covers. Also the inference rate (Mvoxel/s) of each network on
this machine, side by side. Writes a comparison PNG (a plane across the slices) and prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from benchmarks.data import authors_model_path, colin27_path
from model.generator import load_generator
from model.predict import enhance
from model.run_dir import RunDirectory
from pipeline.config import SCALES, THIN_TO_THIN
from pipeline.degradation import degrade
from pipeline.interpolation import upsample
from pipeline.metrics import psnr, rmse, ssim
from pipeline.nifti_io import read_nifti
from pipeline.normalization import robust_window

AUTHORS_RANGE = 10000.0  # the authors' model takes intensities scaled to 0..10000


def centre_crop(data: np.ndarray, size: int) -> np.ndarray:
    starts = [(n - size) // 2 for n in data.shape[:2]]
    return data[starts[0]:starts[0] + size, starts[1]:starts[1] + size, :]


def timed(function, repeats: int):
    """(result, median seconds) of `repeats` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def authors_model():
    signature = tf.saved_model.load(authors_model_path()).signatures["serving_default"]

    def run(image: np.ndarray, scale: int) -> np.ndarray:
        indexes = np.zeros((1, len(SCALES)), np.float32)
        indexes[0, SCALES.index(scale)] = 1.0
        outputs = signature(input_images=tf.constant(image[None, ..., None] * AUTHORS_RANGE),
                            input_indexes=tf.constant(indexes))
        return next(iter(outputs.values())).numpy()[0, ..., 0] / AUTHORS_RANGE

    return run


def evaluate(hr: np.ndarray, scale: int, methods: dict, repeats: int) -> tuple[dict, dict]:
    """Metrics and images of each method at one scale; hr is slice axis last (Colin27's axial axis)."""
    lr = degrade(hr, scale, THIN_TO_THIN, axis=2)
    cubic = upsample(lr, scale, THIN_TO_THIN, axis=2)
    target = hr[..., : cubic.shape[2]]
    window = robust_window(lr)
    image = np.moveaxis(window.normalize(cubic), 2, 0)  # the networks take the slice axis first
    outputs, rates = {"TCI": cubic}, {}
    for name, method in methods.items():
        result, seconds = timed(lambda: method(image, scale), repeats)
        outputs[name] = window.denormalize(np.moveaxis(result, 0, 2))
        rates[name] = image.size / seconds / 1e6
    data_range = float(target.max() - target.min())
    metrics = {name: {"rmse": rmse(out, target), "psnr": psnr(out, target, data_range),
                      "ssim": ssim(out, target, data_range)} for name, out in outputs.items()}
    return {"metrics": metrics, "mvoxel_per_s": rates}, {"target": target, **outputs}


def save_figure(images_by_scale: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(images_by_scale)
    columns = list(images_by_scale[rows[0]])
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(2.6 * len(columns), 2.8 * len(rows)), squeeze=False)
    for row, scale in enumerate(rows):
        target = images_by_scale[scale]["target"]
        middle = target.shape[0] // 2
        low, high = np.percentile(target, [0.5, 99.5])
        for column, name in enumerate(columns):
            plane = images_by_scale[scale][name][middle].T[::-1]  # a sagittal plane: slices run vertically
            axes[row, column].imshow(plane, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            axes[row, column].set_title(f"{name} x{scale}", fontsize=9)
            axes[row, column].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run folder")
    parser.add_argument("--which", choices=("best", "last"), default="best", help="its best or last generator")
    parser.add_argument("--scales", default="2,4")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-authors", action="store_true", help="skip the authors' model")
    parser.add_argument("--png", default="benchmarks/results/colin27_comparison.png")
    args = parser.parse_args()

    run = RunDirectory(args.run)
    generator = load_generator(run.best_generator if args.which == "best" else run.last_generator)
    methods = {"soupgan": lambda image, scale: enhance(generator, image, scale)}
    if not args.no_authors:
        methods["authors"] = authors_model()
    hr = centre_crop(read_nifti(colin27_path()).data, args.crop)
    report, images = {}, {}
    for scale in (int(s) for s in args.scales.split(",")):
        report[f"x{scale}"], images[scale] = evaluate(hr, scale, methods, args.repeats)
        for name, values in report[f"x{scale}"]["metrics"].items():
            print(f"x{scale} {name:8s} PSNR {values['psnr']:6.2f} dB  SSIM {values['ssim']:.4f}  RMSE {values['rmse']:8.3f}",
                  flush=True)
    os.makedirs(os.path.dirname(args.png) or ".", exist_ok=True)
    save_figure(images, args.png)
    print(json.dumps({"generator_parameters": generator.count_params(), **report}, indent=2))


if __name__ == "__main__":
    main()
