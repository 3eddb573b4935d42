"""Pairs drawn on the fly: exact degradation of augmented targets, every slice axis, seeds, and augmentation."""
import dataclasses

import numpy as np
import pytest

from pipeline.data.augmentation import (AugmentationConfig, Histogram, IntensityMapping, augment_block, bias_field,
                                   random_mapping)
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.errors import VolumeShapeError
from pipeline.method.normalization import robust_window
from pipeline.data.random_pairs import RandomPairSampler, SamplerConfig
from pipeline.volume import Volume

SIZE = 16


def head(shape=(40, 44, 48), spacing=(1.0, 1.0, 1.0), seed=0):
    """A bright ellipsoid with texture in a dark background, like a head in its field of view."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    inside = sum(g ** 2 for g in grid) < 0.8
    data = np.where(inside, 100 + 40 * np.sin(7 * grid[0]) * np.cos(5 * grid[1] + 3 * grid[2]), 2.0)
    return Volume((data + rng.normal(0, 1, shape)).astype(np.float32), np.diag([*spacing, 1.0]))


def kept_slice_offset(pair_in, pair_out, scale):
    """The offset o at which every s-th thin slice is an original one (the spline passes through them)."""
    for offset in range(scale):
        if np.allclose(pair_in[offset::scale], pair_out[offset::scale], atol=1e-4):
            return offset
    return None


@pytest.mark.parametrize("augment", [False, True])
def test_thin_to_thin_inputs_pass_through_the_kept_slices_of_their_targets(augment):
    """The input is the spline through every s-th slice of the (augmented) target, whatever the phase."""
    augmentation = AugmentationConfig() if augment else AugmentationConfig.none()
    sampler = RandomPairSampler([head()], SamplerConfig(SIZE, criterion=THIN_TO_THIN, flips=False,
                                                        augmentation=augmentation))
    rng = np.random.default_rng(1)
    offsets = set()
    for _ in range(30):
        pair_in, pair_out, scale = sampler.pair(rng)
        assert pair_in.shape == pair_out.shape == (SIZE,) * 3 and pair_in.dtype == np.float32
        offset = kept_slice_offset(pair_in, pair_out, scale)
        assert offset is not None, f"x{scale}: no slice phase matches"
        between = np.setdiff1d(np.arange(SIZE), np.arange(offset, SIZE, scale))
        assert not np.allclose(pair_in[between], pair_out[between], atol=1e-3)
        offsets.add((scale, offset))
    assert len(offsets) > 5  # phases vary


def test_thin_to_thick_inputs_keep_each_slab_mean():
    """Thin-to-thick: averaging the input's thin slices over a slab gives the thick slice the target makes."""
    sampler = RandomPairSampler([head()], SamplerConfig(SIZE, scales=(2,), criterion=THIN_TO_THICK, flips=False,
                                                        augmentation=AugmentationConfig.none()))
    pair_in, pair_out, _ = sampler.pair(np.random.default_rng(3))
    slab_means = [pair_out[o:o + 2 * 4].reshape(4, 2, SIZE, SIZE).mean(axis=1) for o in (0, 1)]
    interpolated = [pair_in[o:o + 2 * 4].reshape(4, 2, SIZE, SIZE).mean(axis=1) for o in (0, 1)]
    # one of the two slab phases is the real one: there the spline of the slab means is close to them
    errors = [np.abs(a - b).mean() for a, b in zip(slab_means, interpolated)]
    assert min(errors) < 0.5 * max(errors)


def slab_offset(pair_in, pair_out, scale, atol):
    """The slab phase o at which every complete slab of the input averages to the target's slab, if any."""
    for offset in range(scale):
        slabs = (len(pair_in) - offset) // scale
        window = slice(offset, offset + slabs * scale)
        means = [a[window].reshape(slabs, scale, *a.shape[1:]).mean(axis=1) for a in (pair_in, pair_out)]
        if np.allclose(*means, atol=atol):
            return offset
    return None


def test_consistent_thin_to_thick_inputs_average_back_to_the_target_slabs_exactly():
    """With `consistent_input` every complete slab of the input has the target's slab mean (its thick slice),
    under augmentation and flips too; the plain spline only comes close."""
    config = SamplerConfig(SIZE, criterion=THIN_TO_THICK)
    consistent = RandomPairSampler([head()], dataclasses.replace(config, consistent_input=True))
    plain = RandomPairSampler([head()], config)
    for seed in range(12):
        pair_in, pair_out, scale = consistent.pair(np.random.default_rng(seed))
        assert slab_offset(pair_in, pair_out, scale, atol=1e-5) is not None, f"x{scale}: no slab phase matches"
        plain_in, plain_out, _ = plain.pair(np.random.default_rng(seed))
        np.testing.assert_array_equal(plain_out, pair_out)  # the same draw, only the input differs
        assert slab_offset(plain_in, plain_out, scale, atol=1e-5) is None


def test_consistent_flow_inputs_average_back_to_the_target_slabs_exactly():
    """Flow-guided thin-to-thick inputs with `consistent_input`: the patch's slabs restored whole, so every complete
    slab still has the target's slab mean, as the spline's do."""
    config = SamplerConfig(SIZE, criterion=THIN_TO_THICK, flow_input=True, consistent_input=True)
    flow = RandomPairSampler([head()], config)
    spline = RandomPairSampler([head()], dataclasses.replace(config, flow_input=False))
    for seed in range(8):
        pair_in, pair_out, scale = flow.pair(np.random.default_rng(seed))
        assert pair_in.shape == (SIZE,) * 3
        assert slab_offset(pair_in, pair_out, scale, atol=1e-5) is not None, f"x{scale}: no slab phase matches"
        assert np.abs(pair_in - spline.pair(np.random.default_rng(seed))[0]).max() > 1e-3


@pytest.mark.parametrize("flow", [False, True])
def test_fractional_scales_pass_through_the_thick_slices_at_every_p_th_thin_slice(flow):
    """x2.5: degraded by 5 against the thin slices 2 apart, so every 5th thin slice of the pair is a thick slice
    of the scan and the input passes through it (spline and flow alike)."""
    config = SamplerConfig(SIZE, scales=(2.5,), criterion=THIN_TO_THIN, flips=False,
                           augmentation=AugmentationConfig.none(), flow_input=flow)
    sampler = RandomPairSampler([head(shape=(60, 44, 48))], config)
    offsets = set()
    for seed in range(8):
        pair_in, pair_out, scale = sampler.pair(np.random.default_rng(seed))
        assert scale == 2.5 and pair_in.shape == pair_out.shape == (SIZE,) * 3
        offset = kept_slice_offset(pair_in, pair_out, 5)
        assert offset is not None, f"seed {seed}: no thin slice passes through a thick one"
        offsets.add(offset)
    assert len(offsets) > 1  # the phase and depth vary
    consistent = RandomPairSampler([head(shape=(60, 44, 48))], dataclasses.replace(
        config, criterion=THIN_TO_THICK, consistent_input=True))
    plain = RandomPairSampler([head(shape=(60, 44, 48))], dataclasses.replace(config, criterion=THIN_TO_THICK))
    restored, _, _ = consistent.pair(np.random.default_rng(0))
    assert np.isfinite(restored).all() and np.abs(restored - plain.pair(np.random.default_rng(0))[0]).max() > 1e-4


def test_isotropic_scans_are_degraded_along_every_axis_thick_ones_only_in_plane():
    assert head().thin_axes() == (0, 1, 2)
    assert head(spacing=(0.9, 0.9, 3.0)).thin_axes() == (0, 1)
    sampler = RandomPairSampler([head(), head(spacing=(0.9, 0.9, 3.0))], SamplerConfig(SIZE))
    assert sampler.axes == [(0, 1, 2), (0, 1)]


def test_slice_axes_restrict_every_volume_to_the_named_axes():
    """An upsampled scan is isotropic on its grid, but only its measured in-plane axes hold real detail."""
    varied = head()
    constant_along_1 = varied.with_data(np.repeat(varied.data[:, :1], varied.shape[1], axis=1))
    config = SamplerConfig(SIZE, flips=False, augmentation=AugmentationConfig.none())
    only_1 = RandomPairSampler([constant_along_1], dataclasses.replace(config, slice_axes=(1,)))
    assert only_1.axes == [(1,)]
    rng = np.random.default_rng(2)
    for _ in range(5):  # degraded along axis 1 only: nothing to lose, the input is the target
        pair_in, pair_out, _ = only_1.pair(rng)
        np.testing.assert_allclose(pair_in, pair_out, atol=1e-4)
    pair_in, pair_out, _ = RandomPairSampler([constant_along_1], dataclasses.replace(config, slice_axes=(0,))).pair(rng)
    assert np.abs(pair_in - pair_out).max() > 1e-2


def test_draws_are_reproducible_from_the_seed_and_differ_between_seeds():
    sampler = RandomPairSampler([head(), head(seed=1)], SamplerConfig(SIZE))
    first = sampler.batch(4, np.random.default_rng([0, 0]))
    again = sampler.batch(4, np.random.default_rng([0, 0]))
    other = sampler.batch(4, np.random.default_rng([0, 1]))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    assert first[0].shape == (4, SIZE, SIZE, SIZE) and set(first[2]) <= {2.0, 3.0, 4.0, 5.0, 6.0}


def test_a_volume_too_small_for_the_patches_is_refused():
    with pytest.raises(VolumeShapeError,
                       match=r"a 40x44x12 volume is too small for 16x16x16 patches at x2 along axis 0"):
        RandomPairSampler([head(shape=(40, 44, 12))], SamplerConfig(SIZE))
    with pytest.raises(VolumeShapeError, match=r"too small for 42x16x16 patches at x2 along axis 0"):
        RandomPairSampler([head()], SamplerConfig(SIZE, patch_depth=42))


def test_deeper_patches_run_along_the_slice_axis():
    """--patch-depth lengthens pairs along the slice axis only (flips and in-plane transposes keep the shape),
    and the slice axis is the degraded one: every s-th slice of the input is the target's."""
    sampler = RandomPairSampler([head()], SamplerConfig(SIZE, patch_depth=28, augmentation=AugmentationConfig.none()))
    rng = np.random.default_rng(5)
    for _ in range(10):
        pair_in, pair_out, scale = sampler.pair(rng)
        assert pair_in.shape == pair_out.shape == (28, SIZE, SIZE)
        assert kept_slice_offset(pair_in, pair_out, scale) is not None
    assert sampler.batch(3, rng)[0].shape == (3, 28, SIZE, SIZE)


def test_histogram_finds_the_window_of_a_remapped_volume():
    data = head().data
    normalised = robust_window(data).normalize(data)
    histogram = Histogram.of(normalised)
    identity = histogram.window_after(lambda x: x)
    assert identity.low == pytest.approx(0.0, abs=0.01) and identity.high == pytest.approx(1.0, abs=0.01)
    mapping = IntensityMapping(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 0.2]), gamma=1.0)  # swaps contrasts
    expected = robust_window(mapping(normalised))
    found = histogram.window_after(mapping)
    assert found.low == pytest.approx(expected.low, abs=0.01) and found.high == pytest.approx(expected.high, abs=0.01)


def test_augmentation_changes_contrast_but_keeps_the_background_dark_and_the_window_unit():
    data = head().data
    normalised = robust_window(data).normalize(data)
    histogram, rng = Histogram.of(normalised), np.random.default_rng(0)
    always = AugmentationConfig(remap_probability=1.0, gamma_probability=1.0, bias_probability=0.0, noise_probability=0.0)
    outputs = [augment_block(normalised, (0, 0, 0), normalised.shape, histogram, rng, always) for _ in range(5)]
    background = normalised < 0.05
    for out in outputs:
        assert np.abs(out[background]).mean() < 0.1
        window = robust_window(out)
        assert window.low == pytest.approx(0.0, abs=0.02) and window.high == pytest.approx(1.0, abs=0.02)
    assert np.std([np.corrcoef(out[~background], normalised[~background])[0, 1] for out in outputs]) > 0.05
    untouched = augment_block(normalised, (0, 0, 0), normalised.shape, histogram, rng, AugmentationConfig.none())
    np.testing.assert_allclose(untouched, normalised, atol=0.02)


def test_bias_field_is_smooth_and_centred():
    field = bias_field(np.random.default_rng(0), (20, 20, 20), (10, 0, 0), (40, 20, 20), amplitude=0.2)
    assert abs(np.log(field).mean()) < 0.2 and np.abs(np.diff(np.log(field), axis=0)).max() < 0.05
    assert field.std() > 0.01


def test_gamma_only_mapping_is_monotonic():
    mapping = random_mapping(np.random.default_rng(0), AugmentationConfig(remap_probability=0.0, gamma_probability=1.0))
    x = np.linspace(0, 1.2, 50)
    assert mapping.gamma != 1.0 and np.all(np.diff(mapping(x)) > 0)


def test_flow_input_pairs_are_the_same_draws_with_the_flow_guided_input():
    """`flow_input`: the same targets as spline pairs (the context around the patch only feeds the flow), inputs
    that keep the measured slices and come closer to the target on oblique structure."""
    config = SamplerConfig(SIZE, flips=False, augmentation=AugmentationConfig.none())
    spline = RandomPairSampler([head()], config)
    flow = RandomPairSampler([head()], dataclasses.replace(config, flow_input=True))
    spline_errors, flow_errors = [], []
    for seed in range(12):
        flow_in, flow_out, scale = flow.pair(np.random.default_rng(seed))
        spline_in, spline_out, _ = spline.pair(np.random.default_rng(seed))
        np.testing.assert_array_equal(flow_out, spline_out)
        assert flow_in.shape == flow_out.shape == (SIZE,) * 3 and flow_in.dtype == np.float32
        assert kept_slice_offset(flow_in, flow_out, scale) is not None
        spline_errors.append(np.mean((spline_in - spline_out) ** 2))
        flow_errors.append(np.mean((flow_in - flow_out) ** 2))
    assert np.mean(flow_errors) < 0.8 * np.mean(spline_errors), (np.mean(flow_errors), np.mean(spline_errors))
