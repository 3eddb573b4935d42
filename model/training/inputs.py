"""Training input → ({"image", "scale"}, target) batches in the intensity space the generator uses: from
shards (each target normalised with its thick volume's [p0.5, p99.5] window, carried by the record, by the
same `pipeline.graph.graph_ops.normalize_tf` the serving graph applies; schema 2 stores the input normalised
already, as inference makes it), or drawn on the fly from whole volumes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from pipeline.data.dataset import make_dataset
from pipeline.graph.graph_ops import normalize_tf
from pipeline.data.random_pairs import RandomPairSampler, SamplerConfig
from pipeline.data.records import SCHEMA_VERSION, split_pattern
from pipeline.volume import Volume


def to_model_batch(batch: dict, input_normalized: bool) -> tuple[dict, tf.Tensor]:
    """A parsed batch of patch pairs → (generator inputs, normalised target); the input is normalised here
    unless the records store it normalised (schema 2)."""
    low = tf.reshape(batch["window"][:, 0], [-1, 1, 1, 1, 1])
    high = tf.reshape(batch["window"][:, 1], [-1, 1, 1, 1, 1])
    image = batch["input"] if input_normalized else normalize_tf(batch["input"], low, high)
    return {"image": image, "scale": batch["scale"]}, normalize_tf(batch["target"], low, high)


def training_dataset(data_dir: str, split: str, global_batch_size: int, criterion: str, patch_size: int,
                     repeat: bool, seed: int | None = None, schema_version: int = SCHEMA_VERSION) -> tf.data.Dataset:
    """Global batches of one criterion's patch pairs (scales mixed, one per sample) from a shard set of
    `schema_version` (its manifest's): endless, shuffled full batches to train on (`repeat`), or one pass over
    every pair to validate on. A validation pass keeps its last, smaller batch, and so has no static batch size:
    Keras' evaluate in graph mode adds a phantom batch, as large as a static batch size says, to the loss's mean
    at the end of a dataset of unknown length (keras-team/keras#23084)."""
    dataset = make_dataset(
        split_pattern(data_dir, split), global_batch_size, patch_size=patch_size,
        shuffle_buffer=2048 if repeat else 0, seed=seed, repeat=repeat, drop_remainder=repeat, criterion=criterion,
        schema_version=schema_version,
    )
    return dataset.map(lambda batch: to_model_batch(batch, schema_version >= 2),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def volume_pairs_dataset(volumes: list[Volume], config: SamplerConfig, global_batch_size: int,
                         seed: Sequence[int]) -> tf.data.Dataset:
    """Endless global batches of pairs drawn on the fly from thin-slice volumes (`pipeline.data.random_pairs`), in
    the generator's intensity space. `seed` (run seed, restart, worker) makes every restart and worker draw
    new pairs, reproducibly."""
    sampler = RandomPairSampler(volumes, config)

    def batches():
        rng = np.random.default_rng(list(seed))
        while True:
            inputs, targets, scales = sampler.batch(global_batch_size, rng)
            yield {"image": inputs[..., None], "scale": scales}, targets[..., None]

    shape = (global_batch_size, *config.patch_shape, 1)
    signature = ({"image": tf.TensorSpec(shape, tf.float32), "scale": tf.TensorSpec((global_batch_size,), tf.float32)},
                 tf.TensorSpec(shape, tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)
