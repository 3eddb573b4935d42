import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from pipeline.data.dataset import make_dataset
from pipeline.data.records import encode_example
from pipeline.errors import InputError
from tests.pipeline.test_records import make_pair
from tests.s3_server import local_s3
from tests.shard_records import count_records


def write_shards(folder, shards=3, per_shard=7, size=8):
    """GZIP shards of distinct pairs; returns {origin: pair}."""
    pairs = {}
    for shard in range(shards):
        with tf.io.TFRecordWriter(os.path.join(folder, f"train-{shard:05d}-of-{shards:05d}.tfrecord.gz"), options="GZIP") as writer:
            for i in range(per_shard):
                pair = make_pair(seed=shard * 100 + i, size=size, origin=(shard, i, 0))
                pairs[pair.origin] = pair
                writer.write(encode_example(pair))
    return pairs


def test_reads_every_record_once_with_correct_values(tmp_path):
    pairs = write_shards(str(tmp_path))
    dataset = make_dataset(str(tmp_path / "train-*"), batch_size=4, patch_size=8, seed=1, drop_remainder=False)
    seen = []
    for batch in dataset:
        assert batch["input"].shape[1:] == (8, 8, 8, 1)
        for i in range(batch["input"].shape[0]):
            index = np.flatnonzero([np.array_equal(batch["input"][i, ..., 0].numpy(), p.input) for p in pairs.values()])
            assert index.size == 1
            seen.append(int(index[0]))
            origin = list(pairs)[index[0]]
            np.testing.assert_array_equal(batch["target"][i, ..., 0].numpy(), pairs[origin].target)
    assert sorted(seen) == list(range(21))
    assert count_records(str(tmp_path / "*.tfrecord.gz")) == 21


def test_batches_are_full_and_repeat_cycles(tmp_path):
    write_shards(str(tmp_path))
    dataset = make_dataset(str(tmp_path / "*.gz"), batch_size=8, patch_size=8, repeat=True)
    assert dataset.element_spec["input"].shape.as_list() == [8, 8, 8, 8, 1]
    assert sum(1 for _ in dataset.take(6)) == 6  # 48 examples from 21 records: the data repeats


def test_no_matching_shards(tmp_path):
    with pytest.raises(InputError, match="no TFRecord shards match"):
        make_dataset(str(tmp_path / "nothing-*"), batch_size=2)


S3_READER = textwrap.dedent(
    """
    import os, sys
    import tensorflow as tf
    sys.path.insert(0, {root!r})
    from pipeline.data.dataset import make_dataset, register_filesystems
    from tests.shard_records import count_records
    from pipeline.data.records import encode_example
    from tests.pipeline.test_records import make_pair
    register_filesystems(["s3://"])
    for shard in range(2):
        with tf.io.TFRecordWriter(f"s3://soupgan/shards/train-{{shard}}.tfrecord.gz", options="GZIP") as writer:
            for i in range(5):
                writer.write(encode_example(make_pair(seed=10 * shard + i, size=8)))
    batches = list(make_dataset("s3://soupgan/shards/train-*", batch_size=5, patch_size=8))
    print("RESULT", count_records("s3://soupgan/shards/train-*.tfrecord.gz"), len(batches), batches[0]["input"].shape, flush=True)
    os._exit(0)  # tensorflow-io's S3 client can abort the interpreter at exit ("pure virtual method called")
    """
)


def test_s3_round_trip_through_a_local_s3_server():
    """tensorflow-io supplies s3:// to tf.data; the server is moto's, on 127.0.0.1."""
    pytest.importorskip("moto")
    with local_s3("soupgan") as (_, client, env):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        result = subprocess.run(
            [sys.executable, "-c", S3_READER.format(root=root)], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "RESULT 10 2 (5, 8, 8, 8, 1)" in result.stdout
        keys = client.list_objects_v2(Bucket="soupgan")["Contents"]
        assert sorted(k["Key"] for k in keys) == ["shards/train-0.tfrecord.gz", "shards/train-1.tfrecord.gz"]


def test_criterion_keeps_one_degradation_and_batches_mix_scales(tmp_path):
    with tf.io.TFRecordWriter(str(tmp_path / "train-00000.tfrecord.gz"), options="GZIP") as writer:
        for i in range(24):
            criterion = "thin-to-thin" if i % 3 else "thin-to-thick"
            writer.write(encode_example(make_pair(seed=i, criterion=criterion, scale=2 + i % 5)))
    dataset = make_dataset(str(tmp_path / "train-*"), batch_size=4, patch_size=8, criterion="thin-to-thin",
                           drop_remainder=False)
    batches = list(dataset)
    criteria = np.concatenate([batch["criterion"].numpy() for batch in batches])
    scales = np.concatenate([batch["scale"].numpy() for batch in batches])
    assert len(criteria) == 16 and set(criteria) == {b"thin-to-thin"}
    assert set(scales) == {2, 3, 4, 5, 6}


def test_split_pattern_matches_the_shards_jobs_file_names(tmp_path):
    from beam_jobs.transforms import shard_name
    from pipeline.data.records import split_pattern

    for split in ("train", "val"):
        path = tmp_path / shard_name(split, 7)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    assert tf.io.gfile.glob(split_pattern(str(tmp_path), "val")) == [str(tmp_path / "val" / "val-00007.tfrecord.gz")]


def test_read_manifest_refuses_a_folder_without_one(tmp_path):
    from pipeline.data.dataset import read_manifest

    with pytest.raises(InputError, match="is not a shard set: no manifest.json"):
        read_manifest(str(tmp_path))
