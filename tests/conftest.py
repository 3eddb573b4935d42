"""Shared fixtures: synthetic phantoms and the real files that ship inside nibabel and pydicom."""
from __future__ import annotations

import os

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from pipeline.volume import Volume

DICOMDIR_TESTS = os.path.join(os.path.dirname(get_testdata_file("CT_small.dcm")), "dicomdirtests")


def phantom(shape=(48, 52, 40), seed=0) -> np.ndarray:
    """A smooth head-like phantom: nested ellipsoids with texture on a zero background (float32)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = sum((g / r) ** 2 for g, r in zip(grids, (0.8, 0.85, 0.75)))
    inner = sum((g / r) ** 2 for g, r in zip(grids, (0.45, 0.5, 0.4)))
    texture = np.sin(6 * grids[0]) * np.cos(5 * grids[1]) * np.sin(4 * grids[2] + 0.3)
    volume = np.where(radius < 1, 600 + 150 * texture, 0) + np.where(inner < 1, 300, 0)
    return (volume + rng.normal(0, 2, shape) * (radius < 1)).astype(np.float32)


@pytest.fixture
def phantom_volume() -> Volume:
    affine = np.array([[-1.0, 0, 0, 90], [0, 1.0, 0, -120], [0, 0, 1.0, -60], [0, 0, 0, 1]])
    return Volume(phantom(), affine, "MR")


@pytest.fixture(scope="session")
def anatomical_path() -> str:
    """nibabel's bundled real T1 MRI (33x41x25, 2 mm)."""
    return os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


@pytest.fixture(scope="session")
def ct_series_dir() -> str:
    """pydicom's real 5-slice axial CT series; file names and InstanceNumbers run against the positions."""
    return os.path.join(DICOMDIR_TESTS, "98892001", "CT5N")
