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
from pipeline.data.prefetch import Prefetcher
from pipeline.data.shard_reader import (interleaved_records, read_local_manifest, split_files, training_batches,
                                        validation_batches)
from pipeline.errors import InputError, RecordSchemaError
from tests.pipeline.test_records import make_pair
from tests.shard_records import encode_v1_example

SIZE = 8
LENGTHS = (5, 2, 7, 1)  # records per val shard, unequal


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
    files = split_files(root, "val")
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
    files = split_files(root, "val")
    first = [batch for _, batch in zip(range(11), training_batches(files, "thin-to-thin", 1, 2, SIZE, seed=(3, 0)))]
    again = [batch for _, batch in zip(range(11), training_batches(files, "thin-to-thin", 1, 2, SIZE, seed=(3, 0)))]
    other = [batch for _, batch in zip(range(11), training_batches(files, "thin-to-thin", 1, 2, SIZE, seed=(4, 0)))]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    # the 11 thin-to-thin targets, each once, in the first 11 draws (the whole set fits the shuffle buffer)
    expected = sorted(t.tobytes() for (_, t, _) in validation_batches(files, "thin-to-thin", 1, 2, SIZE))
    assert sorted(batch[1].tobytes() for batch in first) == expected


def test_more_files_than_the_cycle_are_interleaved_as_tf_data_interleaves_them(tmp_path):
    """20 files, two of them empty, through 16 slots: where a file ends, the next takes its slot and gives its
    first record a cycle later, as tf.data's (deterministic, parallel) interleave does."""
    files = []
    for index in range(20):
        files.append(str(tmp_path / f"train-{index:05d}.tfrecord.gz"))
        with tf.io.TFRecordWriter(files[-1], "GZIP") as writer:
            for record in range((index * 7) % 5 + (index % 3 > 0)):
                writer.write(f"{index}:{record}".encode())
    theirs = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"), cycle_length=16,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    assert list(interleaved_records(files)) == [record.numpy() for record in theirs]


def test_bad_sets_are_refused_in_one_line(tmp_path):
    with pytest.raises(InputError, match="copy the set to a local folder first"):
        read_local_manifest("gs://bucket/shards")
    with pytest.raises(InputError, match="is not a shard set: no manifest.json"):
        read_local_manifest(str(tmp_path))
    with pytest.raises(InputError, match="no TFRecord shards match .*/train/train-\\*.tfrecord.gz"):
        split_files(str(tmp_path), "train")
    root = write_set(tmp_path / "set")
    files = [os.path.join(root, "val", "val-00000-of-00004.tfrecord.gz")]
    with pytest.raises(RecordSchemaError, match="record schema version 2 differs from the shard set's 1"):
        next(validation_batches(files, "thin-to-thin", 1, 1, SIZE))
    with pytest.raises(RecordSchemaError, match="differs from 16\\^3"):
        next(validation_batches(files, "thin-to-thin", 1, 2, 16))
    with pytest.raises(InputError, match="the train split's shards hold no 2.5D pair"):
        next(training_batches(files, "2.5D", 1, 2, SIZE, seed=0))


def test_the_prefetcher_hands_on_items_and_errors_in_order_and_stops_when_closed():
    def items():
        yield from range(3)
        raise InputError("record 3 is damaged")

    ahead = Prefetcher(items(), depth=2)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    for _ in range(2):  # raised where it happened, and again on a later call
        with pytest.raises(InputError, match="record 3 is damaged"):
            next(ahead)
    endless = Prefetcher(iter(int, 1), depth=2)  # zeros forever
    assert next(endless) == 0
    endless.close()
    assert not endless._thread.is_alive()
