"""Gather what `benchmarks/train_on_device.py` needs on a GPU machine that reaches no network and has
no TensorFlow, Keras, nibabel or pydicom: the pure-Python wheels (and optree's, google-crc32c's and protobuf's for
CPython 3.12) in .whl/,
the recipe's training scans in runs/device-data/; then print the command that uses them there.

The versions are those of the local environment, so a generator trained there loads here (tested under JAX on
CPU). Both folders are git-ignored and together about 15 MB.
"""
from __future__ import annotations

import argparse
import glob
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys

from benchmarks.data import add_synthetic_arguments, recipe_scans, synthetic_flags

WHEELS = ".whl"
DATA = os.path.join("runs", "device-data")
# What a JAX GPU image without TensorFlow lacks for the portable trainer (numpy, scipy, h5py and jax it has); the
# records' protobuf (this environment's version, whatever the image holds) and google-crc32c read shards
PACKAGES = ("keras", "namex", "optree", "nibabel", "pydicom", "google-crc32c", "protobuf")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def download_wheels(folder: str, python_version: str = "3.12") -> list[str]:
    """This environment's versions of PACKAGES as wheels for the device's CPython, in `folder`; their names."""
    os.makedirs(folder, exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", python_version, "--implementation", "cp", *platforms, "-d", folder, *pins],
                   check=True)
    return sorted(os.path.basename(path) for path in glob.glob(os.path.join(folder, "*.whl")))


def copy_scans(folder: str, scans: list[str]) -> list[str]:
    """The recipe's training scans (synthetic ones made here rather than on the device's clock), under the names
    `benchmarks.data` looks for with SOUPGAN_DATA=folder."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for source in scans:
        shutil.copyfile(source, os.path.join(folder, os.path.basename(source)))
        names.append(os.path.basename(source))
    return names


def device_command(minutes: float, extra: str = "") -> str:
    """The shell command to run on the GPU machine, in a copy of the project with WHEELS and DATA beside it;
    results go to $OUT."""
    return (f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
            f"{WHEELS}/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; KERAS_BACKEND=jax SOUPGAN_DATA={DATA} "
            f"PYTHONUNBUFFERED=1 python3 -m benchmarks.train_on_device --minutes {minutes:g} --out $OUT {extra}".strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="the training script's wall-clock budget")
    parser.add_argument("--extra", default="", help="more train_on_device flags, e.g. '--init none --filters 20'")
    add_synthetic_arguments(parser, default=3)  # the shipped default's last stages had 3
    args = parser.parse_args()
    wheels, scans = download_wheels(WHEELS), copy_scans(DATA, recipe_scans(args))
    extra = " ".join([*synthetic_flags(args), args.extra])
    call = {"command": device_command(args.minutes, extra), "copy_beside_the_project": [WHEELS, DATA],
            "timeout_s": int(args.minutes * 60 + 90)}
    print(json.dumps({"wheels": wheels, "scans": scans, "run": call}, indent=2))


if __name__ == "__main__":
    main()
