from collections import Counter

import numpy as np
import pytest

from pipeline.method.degradation import degrade
from pipeline.errors import InputError, VolumeShapeError
from pipeline.method.interpolation import upsample
from pipeline.method.normalization import robust_window
from pipeline.data.pairs import PairConfig, patch_pairs
from pipeline.data.splits import assign_split, parse_split
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
    config = PairConfig(scales=(2, 3), criteria=("thin-to-thin", "thin-to-thick"), patch_size=16, input_kind="spline",
                        consistent=False)
    pairs = list(patch_pairs(volume, config))
    assert Counter((p.criterion, p.scale) for p in pairs).keys() == {("thin-to-thin", 2), ("thin-to-thin", 3), ("thin-to-thick", 2), ("thin-to-thick", 3)}
    pair = next(p for p in pairs if p.criterion == "thin-to-thick" and p.scale == 3)
    k, i, j = pair.origin
    np.testing.assert_array_equal(pair.target, data[k : k + 16, i : i + 16, j : j + 16])
    thick = degrade(data, 3, "thin-to-thick", axis=0)
    assert pair.window == robust_window(thick)  # the thick volume's window, as inference computes it
    expected = pair.window.normalize(upsample(thick, 3, "thin-to-thick", axis=0))  # stored normalised
    np.testing.assert_array_equal(pair.input, expected[k : k + 16, i : i + 16, j : j + 16])
    assert pair.volume_id == volume.volume_id and pair.window.high > pair.window.low
    assert (pair.input_kind, pair.consistent, pair.slice_axis, pair.variant) == ("spline", False, 0, 0)


def test_each_part_of_a_volume_logs_its_progress_by_hashed_id(caplog):
    volume = Volume(phantom((34, 40, 36)), np.diag([3.0, 1.0, 1.0, 1.0]))
    config = PairConfig(scales=(2,), criteria=("thin-to-thin", "thin-to-thick"), patch_size=16, input_kind="spline",
                        variants=2)
    with caplog.at_level("INFO", logger="soupgan.pairs"):
        pairs = list(patch_pairs(volume, config))
    lines = [record.getMessage() for record in caplog.records if record.name == "soupgan.pairs"]
    assert len(lines) == 4 and all(line.startswith(f"volume {volume.volume_id}: part ") for line in lines)
    assert lines[-1].startswith(f"volume {volume.volume_id}: part 4 of 4 (variant 1, slice axis 0, thin-to-thick)")
    assert sum(int(line.split(": ")[-1].split()[0]) for line in lines) == len(pairs)


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


def test_pairs_come_in_a_reproducible_shuffled_order_not_grid_order():
    volume = Volume(phantom((48, 48, 48)), np.eye(4))
    config = PairConfig(scales=(2, 3), criteria=("thin-to-thin",), patch_size=16, stride=8)
    first = [(p.scale, p.origin) for p in patch_pairs(volume, config)]
    assert first == [(p.scale, p.origin) for p in patch_pairs(volume, config)]  # seeded by the volume id
    assert first != sorted(first)
    assert len({scale for scale, _ in first[:8]}) == 2  # scales are mixed from the start
    other = Volume(phantom((48, 48, 48)) + 1.0, np.eye(4))
    assert [(p.scale, p.origin) for p in patch_pairs(other, config)] != first


def test_all_axes_degrades_an_isotropic_scan_along_each_axis_and_a_thick_one_in_plane():
    data = phantom((40, 40, 40))
    config = PairConfig(scales=(2,), criteria=("thin-to-thin",), patch_size=16)
    per_axis = [len(list(patch_pairs(Volume(data, np.eye(4)), PairConfig(**{**config.__dict__, "slice_axis": a}))))
                for a in range(3)]
    every = list(patch_pairs(Volume(data, np.eye(4)), PairConfig(**{**config.__dict__, "slice_axis": "all"})))
    assert len(every) == sum(per_axis)
    thick = Volume(data, np.diag([1.0, 1.0, 3.0, 1.0]))
    assert len(list(patch_pairs(thick, PairConfig(**{**config.__dict__, "slice_axis": "all"})))) == sum(per_axis[:2])
    with pytest.raises(InputError, match="slice axis must be 0, 1, 2 or all"):
        PairConfig(slice_axis=3)
