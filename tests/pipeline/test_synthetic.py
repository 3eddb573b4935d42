"""Synthetic volumes: reproducible from a seed, air outside a head, labelled structures of the asked sizes,
intensities as rendered, and usable as training volumes (NIfTI round trip, random pairs)."""
import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from pipeline.data.augmentation import AugmentationConfig
from pipeline.io.nifti_io import read_nifti, write_nifti
from pipeline.data.random_pairs import RandomPairSampler, SamplerConfig
from pipeline.data.synthetic import SyntheticConfig, random_label_map, render, smooth_noise, synthetic_volume

SMALL = SyntheticConfig(shape=(48, 52, 56), classes=6)


def test_a_seed_gives_the_same_volume_and_another_seed_a_different_one():
    first, again, other = synthetic_volume(3, SMALL), synthetic_volume(3, SMALL), synthetic_volume(4, SMALL)
    assert first.shape == (48, 52, 56) and first.modality == "MR"
    np.testing.assert_array_equal(first.data, again.data)
    assert np.abs(first.data - other.data).mean() > 10.0
    np.testing.assert_array_equal(first.spacing, [1.0, 1.0, 1.0])


def test_smooth_noise_has_the_shape_unit_variance_and_the_smoothness_of_its_spacing():
    rng = np.random.default_rng(0)
    coarse, fine = smooth_noise((64, 64, 64), 16.0, rng), smooth_noise((64, 64, 64), 2.0, rng)
    assert coarse.shape == fine.shape == (64, 64, 64) and coarse.dtype == np.float32
    assert 0.3 < fine.std() < 1.5

    def neighbour_correlation(field):
        return np.corrcoef(field[:-1].ravel(), field[1:].ravel())[0, 1]

    assert neighbour_correlation(coarse) > 0.98 > neighbour_correlation(fine)


def test_smooth_noise_is_the_zoomed_grid_the_shipped_synthetic_volumes_were_made_with():
    """Bit for bit the first voxels of `ndimage.zoom` of its grid: seeds 0..2 stay the default's training data."""
    shape, spacing = (40, 44, 48), 9.0
    field = smooth_noise(shape, spacing, np.random.default_rng(4))
    coarse_shape = [int(np.ceil(n / spacing)) + 1 for n in shape]
    coarse = np.random.default_rng(4).standard_normal(coarse_shape).astype(np.float32)
    zoomed = ndimage.zoom(coarse, [(n - 1) / (c - 1) for n, c in zip(shape, coarse_shape)], order=3,
                          mode="mirror", grid_mode=False, output=np.float32)
    np.testing.assert_array_equal(field, zoomed[:40, :44, :48])


def test_labels_fill_a_head_in_air_with_every_class_and_structures_of_the_asked_size():
    config = SyntheticConfig(shape=(64, 64, 64), classes=5, feature_mm=(8.0, 8.0), head_fraction=(0.8, 0.8))
    labels = random_label_map(config, np.random.default_rng(1))
    inside = labels > 0
    assert set(np.unique(labels[inside])) == {1, 2, 3, 4, 5}
    assert inside[32, 32, 32] and not inside[0, 0, 0] and not inside[63, 32, 32]
    assert 0.15 < inside.mean() < 0.45  # an ellipsoid 0.8 of the field across: π/6·0.8³ ≈ 0.27, wobbled
    # structures a few voxels to tens across: a label changes between neighbours far less often than at random
    changes = (labels[1:] != labels[:-1])[inside[1:] & inside[:-1]].mean()
    assert 0.02 < changes < 0.4


def test_render_keeps_air_dark_and_gives_each_label_one_mean_up_to_texture():
    config = SyntheticConfig(shape=(32, 32, 32), classes=3, texture=0.0, blur_voxels=(0.0, 0.0))
    labels = np.zeros((32, 32, 32), dtype=np.uint8)
    labels[8:24, 8:24, 8:16], labels[8:24, 8:24, 16:24] = 1, 3
    image = render(labels, config, np.random.default_rng(2))
    assert np.all(image[labels == 0] == 0.0)
    for label in (1, 3):
        values = image[labels == label]
        assert np.ptp(values) < 1e-3 and 50.0 <= values[0] <= 1000.0


def test_a_synthetic_volume_round_trips_through_nifti_and_feeds_random_pairs(tmp_path):
    volume = synthetic_volume(7, SMALL)
    write_nifti(volume, tmp_path / "synthetic.nii.gz")
    read = read_nifti(tmp_path / "synthetic.nii.gz")
    np.testing.assert_allclose(read.data, volume.data, rtol=1e-6)
    sampler = RandomPairSampler([read], SamplerConfig(24, augmentation=AugmentationConfig.none()))
    inputs, targets, scales = sampler.batch(6, np.random.default_rng(0))
    assert inputs.shape == targets.shape == (6, 24, 24, 24)
    assert (targets > 0.05).mean() > 0.3  # pairs are cut where the head is


def test_sheets_are_thin_folded_labels_of_their_own_laid_over_the_head():
    plain = SyntheticConfig(shape=(64, 64, 64), classes=4)
    config = dataclasses.replace(plain, sheets=2, sheet_mm=(2.0, 2.0))
    labels = random_label_map(config, np.random.default_rng(5))
    without = random_label_map(plain, np.random.default_rng(5))
    head = without > 0
    np.testing.assert_array_equal(labels > 0, head)  # sheets stay inside the head, which they do not move
    changed = labels != without
    assert set(np.unique(labels[changed])) <= {5, 6} and 0.02 < changed[head].mean() < 0.6
    for sheet in (5, 6):
        mask = labels == sheet
        assert mask.sum() > 100
        # 2 mm thick: a 5³ cube never fits inside, while a structure as large as the labels' would
        assert not ndimage.binary_erosion(mask, np.ones((5, 5, 5))).any()
        # folded: a sheet spans the volume along every axis rather than lying in one plane
        assert all(np.ptp(np.nonzero(mask)[axis]) > 32 for axis in range(3))


def test_without_sheets_a_seed_draws_what_it_always_drew():
    """Sheets are drawn last: the default's training volumes (seeds 0..2, no sheets) keep their labels."""
    plain = SyntheticConfig(shape=(40, 40, 40), classes=4)
    with_sheets = random_label_map(dataclasses.replace(plain, sheets=1), np.random.default_rng(8))
    without = random_label_map(plain, np.random.default_rng(8))
    unchanged = with_sheets != 5
    np.testing.assert_array_equal(with_sheets[unchanged], without[unchanged])


def test_the_config_tag_is_empty_for_the_default_and_tells_configs_apart():
    assert SyntheticConfig().tag == ""
    tags = {SyntheticConfig(sheets=4).tag, SyntheticConfig(sheets=3).tag, SyntheticConfig(classes=11).tag}
    assert len(tags) == 3 and all(len(tag) == 8 for tag in tags)
    assert SyntheticConfig(sheets=4).tag == SyntheticConfig(sheets=4).tag


def test_config_rejects_class_counts_a_label_map_cannot_hold():
    for classes, sheets in ((1, 0), (256, 0), (250, 6), (12, -1)):  # labels are uint8
        with pytest.raises(ValueError, match="2 to 255 classes and sheets"):
            SyntheticConfig(classes=classes, sheets=sheets)
