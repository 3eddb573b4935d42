"""The TFRecord schema of a patch pair (`tf.train.Example`), its encoder, and its parsers (NumPy and tf.data).

Patches are stored as raw float32 little-endian bytes in raw intensities; the model normalises them with
the `window` of the LR volume they came from, which is what the serving graph computes from a thick input.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from pipeline.config import check_criterion
from pipeline.errors import RecordSchemaError
from pipeline.method.normalization import IntensityWindow

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"  # beside the split folders of a shard set: counts, settings, schema version

FEATURES = {
    "input": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.string),
    "patch_shape": tf.io.FixedLenFeature([3], tf.int64),
    "scale": tf.io.FixedLenFeature([], tf.int64),
    "criterion": tf.io.FixedLenFeature([], tf.string),
    "volume_id": tf.io.FixedLenFeature([], tf.string),
    "modality": tf.io.FixedLenFeature([], tf.string),
    "window": tf.io.FixedLenFeature([2], tf.float32),
    "origin": tf.io.FixedLenFeature([3], tf.int64),
    "schema_version": tf.io.FixedLenFeature([], tf.int64),
}


@dataclasses.dataclass(frozen=True)
class PatchPair:
    """One training example: the cubic-interpolated LR patch and its HR target, with provenance."""

    input: np.ndarray
    target: np.ndarray
    scale: int
    criterion: str
    volume_id: str
    window: IntensityWindow
    modality: str = "unknown"
    origin: tuple[int, int, int] = (0, 0, 0)


def _bytes(*values: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(*values: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def encode_example(pair: PatchPair) -> bytes:
    """Serialise a patch pair; the same pair always gives the same bytes."""
    if pair.input.shape != pair.target.shape or pair.input.ndim != 3:
        raise ValueError(f"input {pair.input.shape} and target {pair.target.shape} must be equal 3D shapes")
    check_criterion(pair.criterion)
    feature = {
        "input": _bytes(np.ascontiguousarray(pair.input, dtype="<f4").tobytes()),
        "target": _bytes(np.ascontiguousarray(pair.target, dtype="<f4").tobytes()),
        "patch_shape": _ints(*pair.input.shape),
        "scale": _ints(pair.scale),
        "criterion": _bytes(pair.criterion.encode()),
        "volume_id": _bytes(pair.volume_id.encode()),
        "modality": _bytes(pair.modality.encode()),
        "window": _floats(pair.window.low, pair.window.high),
        "origin": _ints(*pair.origin),
        "schema_version": _ints(SCHEMA_VERSION),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def decode_example(serialized: bytes) -> PatchPair:
    """Parse one serialised example in plain Python (tools and tests); raises `RecordSchemaError`."""
    try:
        example = tf.train.Example.FromString(serialized)
        feature = example.features.feature
        version = feature["schema_version"].int64_list.value[0]
        if version != SCHEMA_VERSION:
            raise RecordSchemaError(f"record schema version {version}, this soupgan reads version {SCHEMA_VERSION}")
        shape = tuple(feature["patch_shape"].int64_list.value)
        window = feature["window"].float_list.value
        return PatchPair(
            input=np.frombuffer(feature["input"].bytes_list.value[0], dtype="<f4").reshape(shape),
            target=np.frombuffer(feature["target"].bytes_list.value[0], dtype="<f4").reshape(shape),
            scale=int(feature["scale"].int64_list.value[0]),
            criterion=feature["criterion"].bytes_list.value[0].decode(),
            volume_id=feature["volume_id"].bytes_list.value[0].decode(),
            window=IntensityWindow(float(window[0]), float(window[1])),
            modality=feature["modality"].bytes_list.value[0].decode(),
            origin=tuple(int(v) for v in feature["origin"].int64_list.value),
        )
    except RecordSchemaError:
        raise
    except Exception as err:
        raise RecordSchemaError(f"not a soupgan patch record ({type(err).__name__}: {err})") from None


def parse_batch(serialized: tf.Tensor, patch_size: int) -> dict[str, tf.Tensor]:
    """Parse a batch of serialised examples in-graph into dense tensors; patches as [B, p, p, p, 1]."""
    parsed = tf.io.parse_example(serialized, FEATURES)
    checks = [
        tf.debugging.assert_equal(
            parsed["schema_version"], tf.constant(SCHEMA_VERSION, tf.int64),
            message=f"record schema version differs from {SCHEMA_VERSION}",
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
            "scale": parsed["scale"],
            "criterion": parsed["criterion"],
            "volume_id": parsed["volume_id"],
            "window": parsed["window"],
        }
