import gzip

import tensorflow as tf

from beam_jobs.tfrecord_shard import write_shard
from pipeline.io.tfrecord_framing import frame


def test_framing_is_byte_identical_to_tensorflows_writer(tmp_path):
    records = [b"", b"x", bytes(range(256)) * 300]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert b"".join(frame(r) for r in records) == (tmp_path / "tf.tfrecord").read_bytes()


def test_shard_is_gzip_readable_by_tf_data_and_written_atomically(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.tfrecord.gz")
    assert write_shard(path, [b"a", b"bb", b"ccc"]) == 3
    assert list(tmp_path.iterdir()) == [tmp_path / "train-00000-of-00001.tfrecord.gz"]  # no temporary left
    read = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert read == [b"a", b"bb", b"ccc"]
    assert gzip.decompress(open(path, "rb").read()) == b"".join(frame(r) for r in (b"a", b"bb", b"ccc"))
    assert write_shard(path, [b"z"]) == 1  # rewriting replaces the shard
    assert [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")] == [b"z"]
