"""Fetch the public volumes used by benchmarks and demos into a local cache, from package registries only.

- MNI ICBM152 2009a T1 (1 mm iso, 197x233x189): inside the nilearn wheel on PyPI (no install needed).
- Colin27 (`ch2.nii.gz`, 1 mm iso): Debian's `mricron-data` package.
- The SOUP-GAN authors' Thin-to-thin SavedModel: inside the `KevinSR==0.1.20` sdist on PyPI (its own
  install fails: it requires tensorflow-gpu), the baseline our generator's cost is compared with.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import shutil
import tarfile
import tempfile
import zipfile

CACHE = os.environ.get("SOUPGAN_DATA", os.path.expanduser("~/.cache/soupgan/data"))
MNI_MEMBER = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def mni152_path(cache: str = CACHE) -> str:
    """Path of the MNI152 T1 template, taken from the nilearn wheel on first use."""
    target = os.path.join(cache, "mni152_t1_1mm.nii.gz")
    if not os.path.exists(target):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, "nilearn"], check=True)
            (wheel,) = glob.glob(os.path.join(tmp, "nilearn-*.whl"))
            with zipfile.ZipFile(wheel) as archive, open(target + ".tmp", "wb") as out:
                out.write(archive.read(MNI_MEMBER))
        os.replace(target + ".tmp", target)
    return target


def colin27_path(cache: str = CACHE) -> str:
    """Path of the Colin27 T1 (`ch2.nii.gz`), unpacked from Debian's mricron-data on first use."""
    target = os.path.join(cache, "colin27_t1_1mm.nii.gz")
    if not os.path.exists(target):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "mricron-data"], cwd=tmp, check=True, capture_output=True)
            (deb,) = glob.glob(os.path.join(tmp, "mricron-data_*.deb"))
            subprocess.run(["dpkg", "-x", deb, os.path.join(tmp, "x")], check=True)
            os.replace(os.path.join(tmp, "x", "usr", "share", "mricron", "templates", "ch2.nii.gz"), target)
    return target


def authors_model_path(cache: str = CACHE) -> str:
    """Folder of the authors' Thin-to-thin SavedModel, unpacked from the KevinSR sdist on first use."""
    target = os.path.join(cache, "kevinsr_thin_to_thin")
    if not os.path.exists(target):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "-q", "-d", tmp,
                            "KevinSR==0.1.20"], check=True)
            (sdist,) = glob.glob(os.path.join(tmp, "KevinSR-*.tar.gz"))
            with tarfile.open(sdist) as archive:
                archive.extractall(tmp, filter="data")
            shutil.move(os.path.join(tmp, "KevinSR-0.1.20", "KevinSR", "Thin-to-thin"), target + ".tmp")
        os.replace(target + ".tmp", target)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=CACHE)
    args = parser.parse_args()
    print(mni152_path(args.cache))
    print(colin27_path(args.cache))
    print(authors_model_path(args.cache))
