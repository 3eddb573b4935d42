from collections import Counter

import numpy as np
import pytest

from pipeline.degradation import degrade
from pipeline.errors import InputError, VolumeShapeError
from pipeline.interpolation import upsample
from pipeline.pairs import PairConfig, patch_pairs
from pipeline.splits import assign_split, parse_split
from pipeline.volume import Volume, hashed_id
from tests.conftest import phantom


def test_split_is_stable_seeded_and_close_to_the_ratios():
    ids = [hashed_id(str(i)) for i in range(20000)]
    counts = Counter(assign_split(i, (8, 1, 1), seed=0) for i in ids)
    assert abs(counts["train"] / 20000 - 0.8) < 0.01 and abs(counts["val"] / 20000 - 0.1) < 0.01
    assert [assign_split(i) for i in ids[:50]] == [assign_split(i) for i in ids[:50]]
    assert [assign_split(i, seed=1) for i in ids[:50]] != [assign_split(i, seed=0) for i in ids[:50]]
    assert {assign_split(i, (0, 0, 1)) for i in ids[:100]} == {"test"}
    assert parse_split("8,1,1") == (8, 1, 1)
    for bad in ("8,1", "a,b,c", "0,0,0", "-1,1,1"):
        with pytest.raises(InputError, match="split must be three"):
            parse_split(bad)


def test_pairs_are_slice_axis_first_and_match_degrade_then_upsample():
    data = phantom((34, 40, 36))
    volume = Volume(data, np.diag([3.0, 1.0, 1.0, 1.0]))  # the slice axis is axis 0
    config = PairConfig(scales=(2, 3), criteria=("thin-to-thin", "thin-to-thick"), patch_size=16)
    pairs = list(patch_pairs(volume, config))
    assert Counter((p.criterion, p.scale) for p in pairs).keys() == {("thin-to-thin", 2), ("thin-to-thin", 3), ("thin-to-thick", 2), ("thin-to-thick", 3)}
    pair = next(p for p in pairs if p.criterion == "thin-to-thick" and p.scale == 3)
    k, i, j = pair.origin
    np.testing.assert_array_equal(pair.target, data[k : k + 16, i : i + 16, j : j + 16])
    expected = upsample(degrade(data, 3, "thin-to-thick", axis=0), 3, "thin-to-thick", axis=0)
    np.testing.assert_array_equal(pair.input, expected[k : k + 16, i : i + 16, j : j + 16])
    assert pair.volume_id == volume.volume_id and pair.window.high > pair.window.low


def test_background_patches_are_dropped():
    volume = Volume(np.pad(phantom((32, 32, 40)), ((0, 64), (0, 0), (0, 0))), np.eye(4))  # 40 slices -> 39
    pairs = list(patch_pairs(volume, PairConfig(scales=(2,), criteria=("thin-to-thin",), patch_size=32, slice_axis=2)))
    assert {p.origin[1] for p in pairs} == {0}  # only the first 32 voxels along axis 0 hold the phantom


def test_too_small_volumes_fail_before_any_output():
    volume = Volume(phantom((40, 40, 14)), np.eye(4))  # thin-to-thin x2 leaves 13 slices
    with pytest.raises(VolumeShapeError, match=r"smaller than a 16\^3 patch after thin-to-thin x2"):
        patch_pairs(volume, PairConfig(scales=(2,), criteria=("thin-to-thin",), patch_size=16))  # raises on the call itself
    with pytest.raises(VolumeShapeError, match="too few for thin-to-thick x6"):
        patch_pairs(Volume(phantom((40, 40, 40))[:, :, :10], np.eye(4)), PairConfig(scales=(6,), criteria=("thin-to-thick",), patch_size=4))
