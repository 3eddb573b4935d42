"""Every pair the shards job stores holds, bit for bit, the input that `soupgan upsample` builds for the generator
from the same thick volume (`model.inference.super_resolve`'s sources), on every slice axis, for both criteria,
both input kinds and augmented variants."""
from collections import Counter

import numpy as np
import pytest

from model.inference.super_resolve import GeneratorInput, input_source
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN, scale_ratio
from pipeline.data.pairs import PairConfig, patch_pairs, variant_data
from pipeline.method.degradation import degrade_volume
from pipeline.method.geometry import upsampled_affine
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


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
def test_fractional_scales_pair_the_upsample_input_with_thin_slices_the_scan_has(criterion):
    """x2.5 and x8/3: the thick volume is the scan degraded by 5 (by 8), upsampled at the fractional scale as
    `upsample` does it; the target is the scan's thin slices 2 (3) apart, or their slab means for thin-to-thick,
    on exactly the upsampled grid."""
    volume = Volume(phantom((64, 34, 30)), np.eye(4), "MR")
    config = PairConfig(scales=(2.5, 8 / 3), criteria=(criterion,), patch_size=SIZE, stride=9, slice_axis=0)
    pairs = list(patch_pairs(volume, config))
    assert {pair.scale for pair in pairs} == {2.5, 8 / 3}
    for scale, (p, q) in ((2.5, (5, 2)), (8 / 3, (8, 3))):
        assert scale_ratio(scale) == (p, q)
        thick = degrade_volume(volume, p, criterion, 0)
        source, window = input_source(thick, scale, criterion, 0, GeneratorInput(True, criterion == THIN_TO_THICK))
        data = volume.data.astype(np.float32)
        truth = (data[::q] if criterion == THIN_TO_THIN
                 else data[: len(data) // q * q].reshape(-1, q, *data.shape[1:]).mean(axis=1, dtype=np.float64))
        # the thin grid the inference writes: q scan slices apart, starting on the first target slice (the centre
        # of the first q-slab for thin-to-thick)
        grid = upsampled_affine(thick.affine, 0, scale, criterion)
        assert np.allclose(grid[:3, 0], [q, 0, 0])
        assert np.allclose(grid[:3, 3], [(q - 1) / 2 if criterion == THIN_TO_THICK else 0, 0, 0])
        mine = [pair for pair in pairs if pair.scale == scale]
        assert mine
        for pair in mine:
            z, y, x = pair.origin
            region = (slice(z, z + SIZE), slice(y, y + SIZE), slice(x, x + SIZE))
            assert pair.window == window and np.array_equal(pair.input, source(region))
            np.testing.assert_array_equal(pair.target, truth[region].astype(np.float32))
