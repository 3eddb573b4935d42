"""Where `soupgan train` gets its pairs: Beam shards (`--data`, with their validation split) or pairs drawn on the
fly from thin-slice scans (`--volumes`), behind one interface so the trainer does not branch on which."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from model.training.inputs import training_dataset, volume_pairs_dataset
from model.training.run_setup import pair_sampler_config
from model.training.train_config import TrainConfig
from pipeline.config import THIN_TO_THICK
from pipeline.data.dataset import read_manifest
from pipeline.data.records import FLOW, SPLINE, check_version
from pipeline.errors import InputError
from pipeline.volume import Volume


def count_batches(manifest: dict, split: str, criterion: str, batch_size: int) -> int:
    """Full batches of one criterion a split holds (the manifest counts records per criterion and scale)."""
    counts = manifest.get("counts", {}).get(split, {})
    return sum(count for key, count in counts.items() if key.startswith(f"{criterion}/x")) // batch_size


def take_input_kind(manifest: dict, config: TrainConfig) -> None:
    """Set the run's --flow-input and --consistent-input to the inputs the shard set stores (schema 1: the plain
    spline); refuse a flag the shards cannot serve."""
    stored = manifest.get("input") or {"kind": SPLINE, "consistent_thin_to_thick": False}
    flow = stored["kind"] == FLOW
    consistent = bool(stored["consistent_thin_to_thick"]) and config.criterion == THIN_TO_THICK
    if config.flow_input and not flow:
        raise InputError(f"{config.data} stores {stored['kind']} inputs; --flow-input needs shards made with "
                         "`soupgan shards --input flow`")
    if config.consistent_input and not consistent:
        raise InputError(f"{config.data} stores thin-to-thick inputs without their slab means restored; "
                         "--consistent-input needs shards made with --consistent-input")
    config.flow_input, config.consistent_input = flow, consistent


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
        manifest = read_manifest(self.config.data)
        self.schema_version = check_version(int(manifest.get("schema_version", 1)))
        take_input_kind(manifest, self.config)
        self.patch_size = int(manifest["patch_size"])
        self.patch_shape = (self.patch_size,) * 3
        self.train_batches = count_batches(manifest, "train", self.config.criterion, self.config.batch_size)
        if self.train_batches == 0:
            raise InputError(f"{self.config.data}: the train split has no full batch of {self.config.batch_size} "
                             f"{self.config.criterion} patch pairs")
        self.val_batches = count_batches(manifest, "val", self.config.criterion, self.config.batch_size)

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
