"""Counting the records in a set of shards, for tests that check what a shards job wrote."""
from typing import Sequence

import tensorflow as tf

from pipeline.data.dataset import COMPRESSION, list_shards


def count_records(patterns: str | Sequence[str]) -> int:
    """Number of records in the shards (reads them once)."""
    dataset = tf.data.TFRecordDataset(list_shards(patterns), compression_type=COMPRESSION)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy())
