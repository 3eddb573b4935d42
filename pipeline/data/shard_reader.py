"""Shard sets read without TensorFlow, for the portable trainer (KERAS_BACKEND=jax on a machine that has none):
the manifest, a split's GZIP shards, and batches of one criterion's pairs in the generator's intensity space.

Each pair has the values the tf.data path gives it (`pipeline.data.dataset.parse_batch`, then
`model.training.inputs.to_model_batch`), bit for bit, and a validation pass comes in tf.data's interleave order.
Training order is made the same way from this reader's own seed: files shuffled and interleaved `INTERLEAVE` at
a time, a shuffle buffer of `SHUFFLE_BUFFER` records. Local folders only: a remote store needs TensorFlow's or
Beam's file systems, so copy the set first.
"""
from __future__ import annotations

import glob
import itertools
import json
import os
from typing import Iterable, Iterator, Sequence, TypeVar

import numpy as np

from pipeline.data.records import MANIFEST_FILE, PatchPair, decode_example, split_pattern
from pipeline.errors import InputError, RecordSchemaError
from pipeline.io.tfrecord_framing import read_gzip_records
from pipeline.method.normalization import normalize_float32

INTERLEAVE = 16  # files read at once, one record from each in turn (tf.data's cycle_length)
SHUFFLE_BUFFER = 2048  # records (tf.data's shuffle buffer in `pipeline.data.dataset.make_dataset`)
REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://", "az://", "http://", "https://")
Item = TypeVar("Item")


def read_local_manifest(data_dir: str) -> dict:
    """The manifest.json of a shard set in a local folder."""
    if str(data_dir).startswith(REMOTE_SCHEMES):
        raise InputError(f"{data_dir}: the TensorFlow-free reader reads local shard sets; copy the set to a local "
                         "folder first (or train without --portable)")
    path = os.path.join(data_dir, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise InputError(f"{data_dir} is not a shard set: no {MANIFEST_FILE} (make one with `soupgan shards`)")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def split_files(data_dir: str, split: str) -> list[str]:
    """The shard files of one split: those the tf.data path reads (`split_pattern`), sorted."""
    files = sorted(glob.glob(split_pattern(data_dir, split)))
    if not files:
        raise InputError(f"no TFRecord shards match {split_pattern(data_dir, split)}")
    return files


def model_arrays(pairs: Sequence[PatchPair], version: int, patch_size: int) -> tuple[np.ndarray, ...]:
    """(inputs, targets, scales) of a batch of pairs read from a set of schema `version`: both patches
    normalised by each record's window (schema 2 stores the input normalised already); patches [B, p, p, p]."""
    inputs, targets = [], []
    for pair in pairs:
        if pair.schema_version != version:
            raise RecordSchemaError(f"record schema version {pair.schema_version} differs from the shard set's "
                                    f"{version}")
        if pair.input.shape != (patch_size,) * 3:
            raise RecordSchemaError(f"record patch shape {pair.input.shape} differs from {patch_size}^3")
        low, high = np.float32(pair.window.low), np.float32(pair.window.high)
        inputs.append(pair.input if pair.input_normalized else normalize_float32(pair.input, low, high))
        targets.append(normalize_float32(pair.target, low, high))
    return np.stack(inputs), np.stack(targets), np.array([pair.scale for pair in pairs], dtype=np.float32)


def interleaved_records(files: Sequence[str]) -> Iterator[bytes]:
    """One pass over the files' records in tf.data's interleave order: one record from each of `INTERLEAVE`
    files in turn; where a file ends, the next file takes its place in the cycle and gives its first record
    when the cycle comes round again."""
    pending = iter(files)
    slots = [read_gzip_records(path) for path in itertools.islice(pending, INTERLEAVE)]
    while any(records is not None for records in slots):
        for index, records in enumerate(slots):
            if records is None:
                continue
            record = next(records, None)
            if record is not None:
                yield record
                continue
            path = next(pending, None)
            slots[index] = read_gzip_records(path) if path else None


def interleaved_pairs(files: Sequence[str], criterion: str) -> Iterator[PatchPair]:
    """The pairs of one criterion in `interleaved_records` order."""
    for record in interleaved_records(files):
        pair = decode_example(record)
        if pair.criterion == criterion:
            yield pair


def shuffled(items: Iterable[Item], buffer: int, rng: np.random.Generator) -> Iterator[Item]:
    """A shuffle buffer: hold `buffer` items, hand out a random one as each new one comes in."""
    held: list[Item] = []
    for item in items:
        if len(held) < buffer:
            held.append(item)
            continue
        index = int(rng.integers(buffer))
        yield held[index]
        held[index] = item
    rng.shuffle(held)
    yield from held


def _batched(pairs: Iterable[PatchPair], batch_size: int, version: int, patch_size: int,
             keep_last: bool = False) -> Iterator[tuple]:
    """Batches of `batch_size` pairs; a last, smaller one only when `keep_last`."""
    batch = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) == batch_size:
            yield model_arrays(batch, version, patch_size)
            batch = []
    if batch and keep_last:
        yield model_arrays(batch, version, patch_size)


def training_batches(files: Sequence[str], criterion: str, batch_size: int, version: int, patch_size: int,
                     seed: int | Sequence[int]) -> Iterator[tuple]:
    """Endless shuffled batches, pass after pass over the train split (every pair once a pass, as tf.data's
    shuffle-then-repeat): each pass takes the files in a new order through its own shuffle buffer."""
    rng = np.random.default_rng(seed)

    def passes() -> Iterator[PatchPair]:
        while True:
            order = [files[i] for i in rng.permutation(len(files))]
            count = 0
            for pair in shuffled(interleaved_pairs(order, criterion), SHUFFLE_BUFFER, rng):
                count += 1
                yield pair
            if count == 0:
                raise InputError(f"the train split's shards hold no {criterion} pair")

    return _batched(passes(), batch_size, version, patch_size)


def validation_batches(files: Sequence[str], criterion: str, batch_size: int, version: int,
                       patch_size: int) -> Iterator[tuple]:
    """One pass over the val split in file order: every pair, so the last batch may be smaller (as the tf.data
    path validates)."""
    return _batched(interleaved_pairs(files, criterion), batch_size, version, patch_size, keep_last=True)
