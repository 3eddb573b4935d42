"""A small, varied input tree for the shards job: NIfTI phantoms (one anisotropic with its slice axis
first), a DICOM CT series, and bad inputs that must end in the dead letters."""
from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from tests.conftest import phantom
from tests.dicom_factory import write_series

JOB_FLAGS = ["--patch-size", "16", "--scales", "2,3", "--criteria", "thin-to-thin,thin-to-thick", "--split", "1,1,1"]
GOOD, BAD = 5, 4


def make_inputs(root: str) -> str:
    """Write the tree under root/inputs and return that folder."""
    folder = os.path.join(root, "inputs")
    os.makedirs(os.path.join(folder, "nested"), exist_ok=True)
    for seed in range(3):
        nib.save(nib.Nifti1Image(phantom((40, 36, 34), seed=seed), np.diag([1.0, 1.0, 1.2, 1.0])), os.path.join(folder, f"mr{seed}.nii.gz"))
    axial_first = np.diag([3.0, 0.9, 0.9, 1.0])  # slice axis 0
    nib.save(nib.Nifti1Image(phantom((36, 40, 38), seed=7), axial_first), os.path.join(folder, "nested", "thick_first.nii"))
    ct = phantom((34, 34, 36), seed=9) * 2 - 1024
    write_series(os.path.join(folder, "ct_series"), np.round(ct), pixel_spacing=(0.7, 0.7), slice_step=1.0)
    with open(os.path.join(folder, "ct_series", "notes.txt"), "w") as handle:
        handle.write("not an image")
    gap = write_series(os.path.join(folder, "nested", "gap_series"), np.zeros((20, 20, 8), np.float32))
    os.remove(gap[4])
    raw = open(os.path.join(folder, "mr0.nii.gz"), "rb").read()
    with open(os.path.join(folder, "corrupt.nii.gz"), "wb") as handle:
        handle.write(raw[: len(raw) // 3])
    open(os.path.join(folder, "empty.nii"), "wb").close()
    nib.save(nib.Nifti1Image(phantom((12, 40, 40)), np.eye(4)), os.path.join(folder, "nested", "too_small.nii.gz"))
    return folder
