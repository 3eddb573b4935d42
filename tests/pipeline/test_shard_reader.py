"""The TensorFlow-free shard reader against the tf.data path: the same batches (values, order of a validation
pass) from schema-2 and schema-1 shards, the training stream's coverage and reproducibility, and bad sets."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from model.training.inputs import to_model_batch
from pipeline.data.dataset import make_dataset
from pipeline.data.records import MANIFEST_FILE, encode_example
from pipeline.data.shard_reader import (read_local_manifest, split_files, training_batches, validation_batches)
from pipeline.errors import InputError, RecordSchemaError
from tests.pipeline.test_records import make_pair
from tests.shard_records import encode_v1_example

SIZE = 8
LENGTHS = (5, 2, 7, 1)  # records per val shard: unequal, so the interleave's slot refill order matters


def write_set(root, encode=encode_example, version=2):
    """A small shard set by hand: a val split of shards of unequal length mixing two criteria and scales."""
    names = []
    os.makedirs(os.path.join(root, "val"))
    for shard, length in enumerate(LENGTHS):
        name = f"val/val-{shard:05d}-of-{len(LENGTHS):05d}.tfrecord.gz"
        with tf.io.TFRecordWriter(os.path.join(root, name), "GZIP") as writer:
            for i in range(length):
                pair = make_pair(seed=10 * shard + i, size=SIZE, origin=(shard, i, 0), scale=2 + i % 3,
                                 criterion="thin-to-thin" if (shard + i) % 4 else "thin-to-thick")
                writer.write(encode(pair))
        names.append(name)
    with open(os.path.join(root, MANIFEST_FILE), "w") as handle:
        json.dump({"schema_version": version, "patch_size": SIZE, "shards": {"val": names}}, handle)
    return str(root)


def tf_batches(root, batch_size, version):
    data = make_dataset(os.path.join(root, "val", "val-*"), batch_size, SIZE, shuffle_buffer=0, deterministic=True,
                        drop_remainder=False, criterion="thin-to-thin", schema_version=version)
    return [to_model_batch(batch, version >= 2) for batch in data]


@pytest.mark.parametrize("encode, version", [(encode_example, 2), (encode_v1_example, 1)])
def test_a_validation_pass_equals_tf_datas_bit_for_bit(tmp_path, encode, version):
    root = write_set(tmp_path / "set", encode, version)
    files = split_files(root, read_local_manifest(root), "val")
    ours = list(validation_batches(files, "thin-to-thin", 3, version, SIZE))
    theirs = tf_batches(root, 3, version)
    assert len(ours) == len(theirs) == 4  # 11 thin-to-thin pairs: every one, the last batch of two
    assert ours[-1][0].shape == (2, SIZE, SIZE, SIZE)
    for (inputs, targets, scales), (model_inputs, model_targets) in zip(ours, theirs):
        np.testing.assert_array_equal(inputs, model_inputs["image"].numpy()[..., 0])
        np.testing.assert_array_equal(scales, model_inputs["scale"].numpy())
        np.testing.assert_array_equal(targets, model_targets.numpy()[..., 0])
        assert inputs.dtype == targets.dtype == scales.dtype == np.float32


def test_the_training_stream_is_reproducible_and_covers_every_pair_each_pass(tmp_path):
    root = write_set(tmp_path / "set")
    files = split_files(root, read_local_manifest(root), "val")
    first = [batch for _, batch in zip(range(11), training_batches(files, "thin-to-thin", 1, 2, SIZE, seed=(3, 0)))]
    again = [batch for _, batch in zip(range(11), training_batches(files, "thin-to-thin", 1, 2, SIZE, seed=(3, 0)))]
    other = [batch for _, batch in zip(range(11), training_batches(files, "thin-to-thin", 1, 2, SIZE, seed=(4, 0)))]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    # the 11 thin-to-thin targets, each once, in the first 11 draws (the whole set fits the shuffle buffer)
    expected = sorted(t.tobytes() for (_, t, _) in validation_batches(files, "thin-to-thin", 1, 2, SIZE))
    assert sorted(batch[1].tobytes() for batch in first) == expected


def test_bad_sets_are_refused_in_one_line(tmp_path):
    with pytest.raises(InputError, match="copy the set to a local folder first"):
        read_local_manifest("gs://bucket/shards")
    with pytest.raises(InputError, match="is not a shard set: no manifest.json"):
        read_local_manifest(str(tmp_path))
    root = write_set(tmp_path / "set")
    os.remove(os.path.join(root, "val", "val-00002-of-00004.tfrecord.gz"))
    with pytest.raises(InputError, match="1 shard\\(s\\) of the val split are missing, e.g. val-00002-of-00004"):
        split_files(root, read_local_manifest(root), "val")
    files = [os.path.join(root, "val", "val-00000-of-00004.tfrecord.gz")]
    with pytest.raises(RecordSchemaError, match="record schema version 2 differs from the shard set's 1"):
        next(validation_batches(files, "thin-to-thin", 1, 1, SIZE))
    with pytest.raises(RecordSchemaError, match="differs from 16\\^3"):
        next(validation_batches(files, "thin-to-thin", 1, 2, 16))
