"""Every pair the shards job stores holds, bit for bit, the input that `soupgan upsample` builds for the generator
from the same thick volume (`model.inference.super_resolve`'s sources), on every slice axis, for both criteria,
both input kinds and augmented variants."""
from collections import Counter

import numpy as np
import pytest

from model.inference.super_resolve import GeneratorInput, input_source
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.data.pairs import PairConfig, patch_pairs, variant_data
from pipeline.method.degradation import degrade_volume
from pipeline.volume import Volume
from tests.conftest import phantom

SIZE = 16


@pytest.mark.parametrize("kind", ["flow", "spline"])
def test_every_pair_input_is_the_upsample_input_bit_for_bit(kind):
    volume = Volume(phantom((32, 36, 30)), np.eye(4), "MR")
    config = PairConfig(scales=(2, 3), criteria=(THIN_TO_THIN, THIN_TO_THICK), patch_size=SIZE, stride=14,
                        slice_axis="all", input_kind=kind, variants=2)
    pairs = list(patch_pairs(volume, config))
    blocks = Counter((p.variant, p.slice_axis, p.criterion, p.scale) for p in pairs)
    assert len(blocks) == 2 * 3 * 2 * 2  # variants x axes x criteria x scales
    sources = {}
    for pair in pairs:
        key = (pair.variant, pair.slice_axis, pair.criterion, pair.scale)
        if key not in sources:
            scan = volume.with_data(variant_data(volume, pair.variant, config.augmentation))
            thick = degrade_volume(scan, pair.scale, pair.criterion, pair.slice_axis)
            source, window = input_source(thick, pair.scale, pair.criterion, pair.slice_axis,
                                          GeneratorInput(kind == "flow", pair.criterion == THIN_TO_THICK))
            sources[key] = source, window, np.moveaxis(scan.data, pair.slice_axis, 0)
        source, window, truth = sources[key]
        z, y, x = pair.origin
        region = (slice(z, z + SIZE), slice(y, y + SIZE), slice(x, x + SIZE))
        assert pair.window == window
        assert np.array_equal(pair.input, source(region)), key
        assert pair.consistent == (pair.criterion == THIN_TO_THICK) and pair.input_kind == kind
        assert np.array_equal(pair.target, truth[region])


def test_augmented_variants_are_seeded_by_the_volume_and_differ_from_it():
    volume = Volume(phantom((32, 32, 32)), np.eye(4), "MR")
    config = PairConfig(variants=3)
    first, again = variant_data(volume, 1, config.augmentation), variant_data(volume, 1, config.augmentation)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, variant_data(volume, 2, config.augmentation))
    assert np.array_equal(variant_data(volume, 0, config.augmentation), volume.data)
    correlation = np.corrcoef(first.ravel(), volume.data.ravel())[0, 1]
    assert 0.3 < correlation < 0.9999  # the same anatomy in another contrast, not the scan again
