"""Where `soupgan train` gets its pairs: Beam shards (`--data`, with their validation split) or pairs drawn on the
fly from thin-slice scans (`--volumes`), behind one interface so the trainer does not branch on which."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from model.training.inputs import training_dataset, volume_pairs_dataset
from model.training.run_setup import pair_sampler_config
from model.training.shard_plan import plan_shards
from model.training.train_config import TrainConfig
from pipeline.data.dataset import read_manifest
from pipeline.volume import Volume


def _distributed(dataset: tf.data.Dataset, policy) -> tf.data.Dataset:
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


@dataclasses.dataclass
class ShardSource:
    """A shard set: an epoch is the train split unless --steps-per-epoch; the val split validates. Replicas and
    workers share its files (auto-shard by data)."""

    config: TrainConfig

    def __post_init__(self):
        plan = plan_shards(read_manifest(self.config.data), self.config)
        self.schema_version, self.patch_size, self.patch_shape = plan.schema_version, plan.patch_size, plan.patch_shape
        self.train_batches, self.val_batches = plan.train_batches, plan.val_batches

    def train(self, restart: int, task_index: int) -> tf.data.Dataset:
        config = self.config
        data = training_dataset(config.data, "train", config.batch_size, config.criterion, self.patch_size,
                                repeat=True, seed=config.seed * 1_000_003 + restart,
                                schema_version=self.schema_version)
        return _distributed(data, tf.data.experimental.AutoShardPolicy.DATA)

    def validation(self) -> tf.data.Dataset | None:
        if not self.val_batches:
            return None
        data = training_dataset(self.config.data, "val", self.config.batch_size, self.config.criterion,
                                self.patch_size, repeat=False, schema_version=self.schema_version)
        return _distributed(data, tf.data.experimental.AutoShardPolicy.DATA)


@dataclasses.dataclass
class VolumeSource:
    """Thin-slice scans: an endless stream of drawn pairs (each worker its own seed), no validation split."""

    config: TrainConfig

    def __post_init__(self):
        from pipeline.io.volume_io import read_volume

        self.volumes: list[Volume] = [read_volume(path) for path in self.config.volumes]
        self.sampler = pair_sampler_config(self.config)
        self.patch_shape = self.sampler.patch_shape
        self.train_batches = None  # the stream has no end: --steps-per-epoch is required
        self.val_batches = 0

    def train(self, restart: int, task_index: int) -> tf.data.Dataset:
        config = self.config
        data = volume_pairs_dataset(self.volumes, self.sampler, config.batch_size,
                                    (config.seed, restart, task_index))
        return _distributed(data, tf.data.experimental.AutoShardPolicy.OFF)

    def validation(self) -> None:
        return None


def training_source(config: TrainConfig) -> ShardSource | VolumeSource:
    return VolumeSource(config) if config.volumes else ShardSource(config)
