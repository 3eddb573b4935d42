"""TFRecord framing without TensorFlow: each record is its length (uint64), the masked CRC32C of the length,
the data, and the masked CRC32C of the data, as TensorFlow writes and reads them. Both ends live here: the
shards job frames what it writes (beam_jobs/tfrecord_shard.py), and `read_gzip_records` reads shards where
TensorFlow is absent (the portable trainer under JAX)."""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import BinaryIO, Iterator

import google_crc32c

from pipeline.errors import InputError

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked CRC32C of the length's 8 bytes
_FOOTER = struct.Struct("<I")  # masked CRC32C of the data


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(record))
    return b"".join((length, struct.pack("<I", masked_crc32c(length)), record,
                     struct.pack("<I", masked_crc32c(record))))


def read_framed(handle: BinaryIO, name: str) -> Iterator[bytes]:
    """The records of a TFRecord stream, each checked against both CRCs; a truncated or corrupt record is an
    InputError naming `name` and the record's index."""
    index = 0
    while header := handle.read(_HEADER.size):
        if len(header) < _HEADER.size:
            raise InputError(f"{name}: truncated TFRecord header at record {index}")
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) != length_crc:
            raise InputError(f"{name}: corrupt TFRecord length at record {index} (CRC mismatch)")
        data = handle.read(length)
        footer = handle.read(_FOOTER.size)
        if len(data) < length or len(footer) < _FOOTER.size:
            raise InputError(f"{name}: truncated TFRecord at record {index}")
        if masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
            raise InputError(f"{name}: corrupt TFRecord data at record {index} (CRC mismatch)")
        yield data
        index += 1


def read_gzip_records(path: str) -> Iterator[bytes]:
    """The records of one local GZIP TFRecord file (what `soupgan shards` writes), checked as `read_framed`."""
    name = os.path.basename(path)
    try:
        with gzip.open(path, "rb") as handle:
            yield from read_framed(handle, name)
    except (OSError, EOFError, zlib.error) as err:  # not GZIP, or cut short inside the compressed stream
        raise InputError(f"{name}: unreadable GZIP TFRecord file ({err})") from None
