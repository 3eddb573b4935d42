"""A small real shard set for training tests: phantom volumes through the shards job (DirectRunner),
16³ patches, scales 2 and 3, thin-to-thin, with volumes in both the train and the val split."""
from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from beam_jobs.shards import run
from pipeline.io.nifti_io import read_nifti
from pipeline.data.splits import assign_split
from tests.conftest import phantom

PATCH = 16
SPLIT = (1, 1, 0)


def make_shard_set(root: str) -> str:
    """Write 3 phantoms, pick a split seed that puts volumes in both train and val, run the job."""
    folder = os.path.join(root, "volumes")
    os.makedirs(folder)
    paths = []
    for seed in range(3):
        path = os.path.join(folder, f"phantom{seed}.nii.gz")
        nib.save(nib.Nifti1Image(phantom((40, 36, 36), seed=seed), np.diag([1.0, 1.0, 1.0, 1.0])), path)
        paths.append(path)
    ids = [read_nifti(path).volume_id for path in paths]
    seed = next(s for s in range(100) if {assign_split(i, SPLIT, s) for i in ids} == {"train", "val"})
    output = os.path.join(root, "shards")
    run([folder, "--output", output, "--patch-size", str(PATCH), "--stride", "8", "--scales", "2,3",
         "--criteria", "thin-to-thin", "--split", ",".join(map(str, SPLIT)), "--seed", str(seed)])
    return output
