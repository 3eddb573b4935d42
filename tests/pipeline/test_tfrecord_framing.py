"""The TensorFlow-free TFRecord reader against TensorFlow's own writer and reader, and on damaged files."""
import gzip

import pytest
import tensorflow as tf

from pipeline.errors import InputError
from pipeline.io.tfrecord_framing import read_gzip_records

RECORDS = [b"", b"x", bytes(range(256)) * 300, b"last"]


def _tf_written(path):
    with tf.io.TFRecordWriter(str(path), "GZIP") as writer:
        for record in RECORDS:
            writer.write(record)
    return str(path)


def test_reads_what_tensorflow_writes_as_tf_data_reads_it(tmp_path):
    path = _tf_written(tmp_path / "a.tfrecord.gz")
    assert list(read_gzip_records(path)) == RECORDS
    assert [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")] == RECORDS


def _rewritten(tmp_path, change):
    raw = bytearray(gzip.decompress(open(_tf_written(tmp_path / "a.tfrecord.gz"), "rb").read()))
    path = tmp_path / "damaged.tfrecord.gz"
    path.write_bytes(gzip.compress(bytes(change(raw))))
    return str(path)


def _flip(raw, offset):
    raw[offset] ^= 0x01
    return raw


@pytest.mark.parametrize("change, message", [
    (lambda raw: _flip(raw, 16 + 1 + 16 + 12 + 5), "corrupt TFRecord data at record 2"),  # a byte of record 2
    (lambda raw: _flip(raw, 16 + 1 + 16 + 2), "corrupt TFRecord length at record 2"),  # record 2's length
    (lambda raw: raw[:-3], "truncated TFRecord at record 3"),
    (lambda raw: raw[:16 + 1 + 16 + 5], "truncated TFRecord header at record 2"),
])
def test_damaged_records_are_refused_with_their_index(tmp_path, change, message):
    path = _rewritten(tmp_path, change)
    with pytest.raises(InputError, match=message):
        list(read_gzip_records(path))


def test_files_that_are_not_gzip_or_are_cut_short_are_refused(tmp_path):
    (tmp_path / "plain.tfrecord.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="plain.tfrecord.gz: unreadable GZIP TFRecord file"):
        list(read_gzip_records(str(tmp_path / "plain.tfrecord.gz")))
    whole = open(_tf_written(tmp_path / "a.tfrecord.gz"), "rb").read()
    (tmp_path / "cut.tfrecord.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="cut.tfrecord.gz: unreadable GZIP TFRecord file"):
        list(read_gzip_records(str(tmp_path / "cut.tfrecord.gz")))
