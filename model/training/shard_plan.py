"""What a shard set offers a run, read from its manifest alone (no TensorFlow, so both trainers share it): the
record schema, the patch size, the batches of the run's criterion in each split, and the inputs it stores,
which set the run's --flow-input and --consistent-input."""
from __future__ import annotations

import dataclasses
import math

from model.training.train_config import TrainConfig
from pipeline.config import THIN_TO_THICK
from pipeline.data.records import FLOW, SPLINE, check_version
from pipeline.errors import InputError


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    schema_version: int
    patch_size: int
    train_batches: int
    val_batches: int

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        return (self.patch_size,) * 3


def count_pairs(manifest: dict, split: str, criterion: str) -> int:
    """Pairs of one criterion a split holds (the manifest counts records per criterion and scale)."""
    counts = manifest.get("counts", {}).get(split, {})
    return sum(count for key, count in counts.items() if key.startswith(f"{criterion}/x"))


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


def plan_shards(manifest: dict, config: TrainConfig) -> ShardPlan:
    """The run's view of a shard set (`config`'s input flags set from it): training takes full batches, a
    validation pass every pair (its last batch may be smaller). Refuses a set without one full train batch of
    the run's criterion."""
    version = check_version(int(manifest.get("schema_version", 1)))
    take_input_kind(manifest, config)
    plan = ShardPlan(version, int(manifest["patch_size"]),
                     count_pairs(manifest, "train", config.criterion) // config.batch_size,
                     math.ceil(count_pairs(manifest, "val", config.criterion) / config.batch_size))
    if plan.train_batches == 0:
        raise InputError(f"{config.data}: the train split has no full batch of {config.batch_size} "
                         f"{config.criterion} patch pairs")
    return plan
