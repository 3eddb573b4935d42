"""Training input: shard batches → ({"image", "scale"}, target) in the intensity space the generator uses.

Each patch is normalised with its thick volume's [p0.5, p99.5] window (carried by the record), the
same `pipeline.graph_ops.normalize_tf` the serving graph applies to a whole thick volume.
"""
from __future__ import annotations

import tensorflow as tf

from pipeline.dataset import make_dataset, split_pattern
from pipeline.graph_ops import normalize_tf


def to_model_batch(batch: dict) -> tuple[dict, tf.Tensor]:
    """A parsed batch of patch pairs → (generator inputs, normalised target)."""
    low = tf.reshape(batch["window"][:, 0], [-1, 1, 1, 1, 1])
    high = tf.reshape(batch["window"][:, 1], [-1, 1, 1, 1, 1])
    inputs = {"image": normalize_tf(batch["input"], low, high), "scale": tf.cast(batch["scale"], tf.float32)}
    return inputs, normalize_tf(batch["target"], low, high)


def training_dataset(data_dir: str, split: str, global_batch_size: int, criterion: str, patch_size: int,
                     repeat: bool, seed: int | None = None) -> tf.data.Dataset:
    """Shuffled global batches of one criterion's patch pairs (scales mixed, one per sample)."""
    dataset = make_dataset(
        split_pattern(data_dir, split), global_batch_size, patch_size=patch_size,
        shuffle_buffer=2048 if repeat else 0, seed=seed, repeat=repeat, criterion=criterion,
    )
    return dataset.map(to_model_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
