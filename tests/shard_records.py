"""Counting the records in a set of shards, for tests that check what a shards job wrote."""
from typing import Sequence

import tensorflow as tf

from pipeline.data.dataset import COMPRESSION, list_shards


def count_records(patterns: str | Sequence[str]) -> int:
    """Number of records in the shards (reads them once)."""
    dataset = tf.data.TFRecordDataset(list_shards(patterns), compression_type=COMPRESSION)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy())


def encode_v1_example(pair) -> bytes:
    """A record of schema 1, as soupgan 0.4.0 wrote it (raw input, integer scale), for the reader's
    backward-compatibility tests."""
    import numpy as np

    def ints(*values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    def blob(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        "input": blob(np.ascontiguousarray(pair.input, dtype="<f4").tobytes()),
        "target": blob(np.ascontiguousarray(pair.target, dtype="<f4").tobytes()),
        "patch_shape": ints(*pair.input.shape), "scale": ints(pair.scale),
        "criterion": blob(pair.criterion.encode()), "volume_id": blob(pair.volume_id.encode()),
        "modality": blob(pair.modality.encode()),
        "window": tf.train.Feature(float_list=tf.train.FloatList(value=[pair.window.low, pair.window.high])),
        "origin": ints(*pair.origin), "schema_version": ints(1),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)
