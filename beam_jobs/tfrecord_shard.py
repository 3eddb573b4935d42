"""Write one GZIP TFRecord shard through Beam's file systems (local, gs://, s3://), atomically.

The TFRecord framing (length, masked CRC32C of the length, data, masked CRC32C of the data) is the
format TensorFlow reads; `tests/beam_jobs/test_tfrecord_shard.py` checks it byte for byte against
`tf.io.TFRecordWriter`. GZIP level 1: on float32 patch records it compresses 3x faster than Beam's fixed
level 6 for files 7.5% larger (BENCHMARKS.md), and compression is most of a volume's time in the job.
A shard is written to a temporary name and renamed, so readers never see half of one.
"""
from __future__ import annotations

import gzip
import struct
import uuid
from typing import Iterable

import google_crc32c
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_MASK_DELTA = 0xA282EAD8
GZIP_LEVEL = 1


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(record))
    return b"".join((length, struct.pack("<I", masked_crc32c(length)), record, struct.pack("<I", masked_crc32c(record))))


def write_shard(path: str, records: Iterable[bytes]) -> int:
    """Write records (in the given order) to a GZIP TFRecord file at `path`; returns how many."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    count = 0
    with FileSystems.create(temporary, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        # no file name and mtime 0 in the GZIP header: identical input gives identical bytes
        with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0) as handle:
            for record in records:
                handle.write(frame(record))
                count += 1
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])
    return count
