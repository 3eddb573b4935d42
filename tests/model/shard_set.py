"""A small real shard set for training tests: phantom volumes through the shards job (DirectRunner),
16³ patches, scales 2 and 3, thin-to-thin, flow-guided inputs (the default), with volumes in both the train
and the val split; and the same pairs as a schema-1 set."""
from __future__ import annotations

import dataclasses
import json
import os

import nibabel as nib
import numpy as np
import tensorflow as tf

from beam_jobs.shards import run
from pipeline.io.nifti_io import read_nifti
from pipeline.data.records import MANIFEST_FILE, decode_example
from pipeline.data.splits import assign_split
from tests.conftest import phantom
from tests.shard_records import encode_v1_example

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


def make_v1_shard_set(v2_shards: str, root: str) -> str:
    """The same pairs as a schema-1 shard set, as soupgan 0.4.0 wrote it (raw inputs, integer scales), for the
    reader's backward-compatibility test."""
    manifest = json.load(open(os.path.join(v2_shards, MANIFEST_FILE)))
    output = os.path.join(root, "shards_v1")
    for split, shards in manifest["shards"].items():
        os.makedirs(os.path.join(output, split), exist_ok=True)
        for shard in shards:
            with tf.io.TFRecordWriter(os.path.join(output, shard), "GZIP") as writer:
                for record in tf.data.TFRecordDataset(os.path.join(v2_shards, shard), compression_type="GZIP"):
                    pair = decode_example(record.numpy())
                    raw = dataclasses.replace(pair, input=pair.window.denormalize(pair.input), scale=int(pair.scale))
                    writer.write(encode_v1_example(raw))
    old = {key: manifest[key] for key in ("patch_size", "stride", "scales", "criteria", "counts", "volumes", "shards")}
    with open(os.path.join(output, MANIFEST_FILE), "w") as handle:
        json.dump({**old, "schema_version": 1}, handle)
    return output
