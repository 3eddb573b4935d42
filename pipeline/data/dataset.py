"""tf.data input over GZIP TFRecord shards: parallel interleave, shuffle, batch, parse (`parse_batch`), prefetch.

Paths may be local, gs:// (TensorFlow's own file system) or s3://, hdfs://, az:// (registered by
tensorflow-io when such a path is seen).
"""
from __future__ import annotations

import json
from typing import Sequence

import tensorflow as tf

from pipeline.config import PATCH_SIZE
from pipeline.errors import InputError
from pipeline.data.records import MANIFEST_FILE, SCHEMA_VERSION, check_version

COMPRESSION = "GZIP"
_CRITERION_FEATURE = {"criterion": tf.io.FixedLenFeature([], tf.string)}
_COMMON = {
    "input": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.string),
    "patch_shape": tf.io.FixedLenFeature([3], tf.int64),
    "criterion": tf.io.FixedLenFeature([], tf.string),
    "volume_id": tf.io.FixedLenFeature([], tf.string),
    "modality": tf.io.FixedLenFeature([], tf.string),
    "window": tf.io.FixedLenFeature([2], tf.float32),
    "origin": tf.io.FixedLenFeature([3], tf.int64),
    "schema_version": tf.io.FixedLenFeature([], tf.int64),
}
FEATURES = {
    1: {**_COMMON, "scale": tf.io.FixedLenFeature([], tf.int64)},
    2: {**_COMMON, "scale": tf.io.FixedLenFeature([], tf.float32),
        "input_kind": tf.io.FixedLenFeature([], tf.string),
        "consistent": tf.io.FixedLenFeature([], tf.int64),
        "slice_axis": tf.io.FixedLenFeature([], tf.int64),
        "variant": tf.io.FixedLenFeature([], tf.int64)},
}  # the record schemas of pipeline.data.records, as tf.io.parse_example reads them
_PLUGIN_SCHEMES = ("s3://", "hdfs://", "az://", "http://", "https://")


def register_filesystems(paths: Sequence[str]) -> None:
    """Load tensorflow-io's file-system plugins when a path needs one (importing it costs a second)."""
    if any(str(path).startswith(_PLUGIN_SCHEMES) for path in paths):
        import tensorflow_io  # noqa: F401  (registers s3://, hdfs://, az://, http(s):// with tf.io.gfile)


def list_shards(patterns: str | Sequence[str]) -> list[str]:
    """Expand glob patterns (any supported file system) to a sorted list of shard files."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    register_filesystems(patterns)
    files = sorted({path for pattern in patterns for path in tf.io.gfile.glob(pattern)})
    if not files:
        raise InputError(f"no TFRecord shards match {', '.join(patterns)}")
    return files


def read_manifest(data_dir: str) -> dict:
    """The shard set's manifest.json (counts per split, criterion and scale; patch size; settings)."""
    path = f"{str(data_dir).rstrip('/')}/{MANIFEST_FILE}"
    register_filesystems([path])
    if not tf.io.gfile.exists(path):
        raise InputError(f"{data_dir} is not a shard set: no {MANIFEST_FILE} (make one with `soupgan shards`)")
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.load(handle)


def _keep_criterion(dataset: tf.data.Dataset, criterion: str) -> tf.data.Dataset:
    """Keep the serialised records of one degradation criterion (parses that one field only)."""

    def is_wanted(record: tf.Tensor) -> tf.Tensor:
        return tf.equal(tf.io.parse_single_example(record, _CRITERION_FEATURE)["criterion"], criterion)

    return dataset.filter(is_wanted)


def make_dataset(
    patterns: str | Sequence[str],
    batch_size: int,
    patch_size: int = PATCH_SIZE,
    shuffle_buffer: int = 2048,
    seed: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = True,
    deterministic: bool = False,
    criterion: str | None = None,
    schema_version: int = SCHEMA_VERSION,
) -> tf.data.Dataset:
    """Batches of parsed patch pairs (dict of tensors) from GZIP shards matching `patterns`.

    Files are interleaved in parallel; shuffling works on serialised records (cheap) and parsing runs
    once per batch (vectorised), which is the fast order for tf.data. `criterion` keeps one
    degradation (batches still mix scales: the generator takes a scale per sample). Records are of one
    `schema_version` (a shard set's manifest says which).
    """
    files = list_shards(patterns)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_buffer:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=COMPRESSION),
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if criterion:  # before the shuffle buffer, which then holds only records that will be used
        dataset = _keep_criterion(dataset, criterion)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(lambda batch: parse_batch(batch, patch_size, schema_version), num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    return dataset.prefetch(tf.data.AUTOTUNE)


def parse_batch(serialized: tf.Tensor, patch_size: int, version: int = SCHEMA_VERSION) -> dict[str, tf.Tensor]:
    """Parse a batch of serialised examples of one schema `version` (the shard set's manifest says which)
    in-graph into dense tensors; patches as [B, p, p, p, 1], the scale as float32."""
    parsed = tf.io.parse_example(serialized, FEATURES[check_version(version)])
    checks = [
        tf.debugging.assert_equal(
            parsed["schema_version"], tf.constant(version, tf.int64),
            message=f"record schema version differs from the shard set's {version}",
        ),
        tf.debugging.assert_equal(
            parsed["patch_shape"], tf.constant(patch_size, tf.int64),
            message=f"record patch shape differs from {patch_size}^3",
        ),
    ]
    batch = serialized.shape[0] if serialized.shape.rank == 1 and serialized.shape[0] is not None else -1
    shape = [batch, patch_size, patch_size, patch_size, 1]  # keeps a static batch size when there is one
    with tf.control_dependencies(checks):
        return {
            "input": tf.reshape(tf.io.decode_raw(parsed["input"], tf.float32, little_endian=True), shape),
            "target": tf.reshape(tf.io.decode_raw(parsed["target"], tf.float32, little_endian=True), shape),
            "scale": tf.cast(parsed["scale"], tf.float32),
            "criterion": parsed["criterion"],
            "volume_id": parsed["volume_id"],
            "window": parsed["window"],
        }
