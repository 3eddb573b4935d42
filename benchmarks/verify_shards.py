"""Check a shard set against its sources: every record checked holds, bit for bit, the input `soupgan upsample`
builds from the same thick volume (`model.inference.super_resolve`'s sources) and the source's thin slices on its
grid as target (the voxels themselves at a whole scale).

    python -m benchmarks.verify_shards SHARDS SOURCE.nii.gz [SOURCE ...] [--records N]

Each source is matched to its shard by volume id; N records spread over its shard are recomputed from the source.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from soupgan.tensorflow_env import apply_tensorflow_defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards")
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--records", type=int, default=20, help="records checked per volume, spread over its shard")
    args = parser.parse_args()
    apply_tensorflow_defaults()
    import tensorflow as tf

    from model.inference.super_resolve import GeneratorInput, input_source
    from pipeline.data.pairs import PairConfig, variant_data
    from pipeline.data.records import FLOW, MANIFEST_FILE, decode_example
    from pipeline.io.volume_io import read_volume
    from pipeline.config import scale_ratio
    from pipeline.method.degradation import degrade_volume, thin_reference

    manifest = json.load(open(os.path.join(args.shards, MANIFEST_FILE)))
    augmentation = PairConfig().augmentation
    print(f"shard set: schema {manifest['schema_version']}, input {manifest['input']}, variants {manifest['variants']}")
    by_id = {}
    for shard in (name for names in manifest["shards"].values() for name in names):
        records = tf.data.TFRecordDataset(os.path.join(args.shards, shard), compression_type="GZIP")
        by_id[decode_example(next(iter(records)).numpy()).volume_id] = shard
    for path in args.sources:
        volume = read_volume(path)
        shard = by_id[volume.volume_id]
        records = tf.data.TFRecordDataset(os.path.join(args.shards, shard), compression_type="GZIP")
        stride = max(1, sum(1 for _ in records) // args.records)  # records spread over the whole shard
        checked, sources = 0, {}
        for record in records.shard(stride, 0).take(args.records):
            pair = decode_example(record.numpy())
            key = (pair.variant, pair.slice_axis, pair.criterion, pair.scale)
            if key not in sources:
                p, q = scale_ratio(pair.scale)  # the record's float32 scale back to the p/q the job used
                scan = volume.with_data(variant_data(volume, pair.variant, augmentation))
                thick = degrade_volume(scan, p, pair.criterion, pair.slice_axis)
                source, window = input_source(thick, p / q, pair.criterion, pair.slice_axis,
                                              GeneratorInput(pair.input_kind == FLOW, pair.consistent))
                truth = thin_reference(scan.data, q, pair.criterion, pair.slice_axis)
                sources[key] = (source, window, np.moveaxis(truth, pair.slice_axis, 0))
            source, window, truth = sources[key]
            size = pair.input.shape[0]
            region = tuple(slice(start, start + size) for start in pair.origin)
            if pair.window != window or not np.array_equal(pair.input, source(region)) \
                    or not np.array_equal(pair.target, truth[region]):
                raise SystemExit(f"volume {volume.volume_id}: record {checked} {key} differs from upsample's input")
            checked += 1
        print(f"volume {volume.volume_id} ({shard}): {checked} records bit-identical to upsample's input "
              f"({len(sources)} degradations recomputed)")


if __name__ == "__main__":
    main()
