"""Sliding-window inference: tiles of one shape cover the grid, blend weights sum to one, a halo of the
receptive radius makes the tiled result equal one pass, and blending hides seams when the halo is short."""
import numpy as np
import pytest

from model.inference.sliding_window import BLENDINGS, SlidingWindow, edge_padded, least_work_cores, sliding_window_inference
from tests.generators import one_pass_over_edge_padded, random_generator

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("blending", BLENDINGS)
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_blend_weights_sum_to_one_everywhere(blending, overlap):
    window = SlidingWindow((23, 40, 17), core=(8, 16, 10), halo=3, overlap=overlap, blending=blending)
    total = np.zeros(window.shape)
    for tile in window.tiles():
        total[tile.output_region] += window.blend_weights(tile)
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


def test_every_tile_has_one_input_shape_inside_the_volume_with_its_halo():
    shape, halo = (30, 41, 19), 4
    window = SlidingWindow(shape, core=(8, 16, 32), halo=halo)
    assert window.input_shape == (16, 22, 19)  # equal cores (41 in three of 14) + 2·halo, clamped to the volume
    for tile in window.tiles():
        for axis, (inputs, core) in enumerate(zip(tile.input_region, tile.core_in_input)):
            assert inputs.stop - inputs.start == window.input_shape[axis]
            assert 0 <= inputs.start and inputs.stop <= shape[axis]
            # a core is at least `halo` from every input edge that is not the volume's own edge
            assert core.start >= halo or inputs.start == 0
            assert inputs.stop - inputs.start - core.stop >= halo or inputs.stop == shape[axis]


def test_cores_are_split_evenly_so_halos_add_the_least_work():
    """181 thin slices in cores of at most 64 take three of 61 (the last flush with the end), not 64, 64 and 64:
    with a halo of 14 that computes 267 slices instead of 276."""
    window = SlidingWindow((181, 217, 40), core=(64, 128, 128), halo=14, beyond_edges=True)
    assert [axis.core_length for axis in window.axes] == [61, 109, 40]
    assert [axis.core_starts for axis in window.axes] == [[0, 61, 120], [0, 108], [0]]
    assert window.input_shape == (89, 137, 68) and len(window) == 6


def _work(shape, cores, halo):
    window = SlidingWindow(shape, core=cores, halo=halo, beyond_edges=True)
    return len(window) * int(np.prod(window.input_shape)), int(np.prod(window.input_shape))


def test_least_work_cores_are_the_best_of_every_core_shape_within_the_budget():
    """Against an exhaustive search over every core shape: the computed voxels (tiles × tile input) are the
    least any shape within the budget reaches, and the tile input stays within it."""
    shape, halo, budget = (13, 17, 11), (2, 3, 1), 900
    best = min(work for cores in np.ndindex(*shape)
               for work, tile in [_work(shape, tuple(c + 1 for c in cores), halo)] if tile <= budget)
    cores = least_work_cores(shape, halo, budget)
    work, tile = _work(shape, cores, halo)
    assert tile <= budget and work == best


def test_least_work_cores_on_colin27_x4_compute_fewer_halo_voxels_than_the_fixed_tiles():
    """Colin27 x4 (181 thin slices of 181x217), receptive field 14: within 3.5 M voxels per tile input the
    network computes 1.92 voxels per output voxel, against 2.45 with 64x128x128 cores; a small scan is one tile."""
    shape = (181, 181, 217)
    cores = least_work_cores(shape, 14, 3_500_000)
    work, tile = _work(shape, cores, 14)
    assert tile <= 3_500_000
    assert work / np.prod(shape) == pytest.approx(1.92, abs=0.01)
    assert _work(shape, (64, 128, 128), 14)[0] / np.prod(shape) == pytest.approx(2.45, abs=0.01)
    assert least_work_cores((25, 33, 41), 14, 3_500_000) == (25, 33, 41)


def test_identity_predictor_gives_back_the_volume_for_any_tiling():
    volume = RNG.random((21, 30, 26), dtype=np.float32)
    for blending in BLENDINGS:
        window = SlidingWindow(volume.shape, core=(6, 11, 9), halo=2, overlap=0.3, blending=blending)
        result = sliding_window_inference(lambda r: volume[r], lambda batch: batch, window, batch_size=3)
        np.testing.assert_allclose(result, volume, rtol=1e-5, atol=1e-6)


def _tiled(generator, image, window):
    def predict(batch):
        return generator({"image": batch[..., None], "scale": np.float32(3.5)}).numpy()[..., 0]

    progress = []
    result = sliding_window_inference(lambda r: image[r], predict, window, batch_size=2,
                                      progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(window), len(window)) and len(progress) == -(-len(window) // 2)
    return result


@pytest.mark.parametrize("variant, dilations", [("residual", ()), ("rrdb", ()), ("residual", (3,))],
                         ids=["residual", "rrdb", "slice-reach"])
def test_halo_of_the_receptive_field_equals_one_pass(variant, dilations):
    generator = random_generator(variant, std=0.1, slice_dilations=dilations)
    image = RNG.random((37, 29, 26), dtype=np.float32)
    whole = generator({"image": image[None, ..., None], "scale": np.float32(3.5)}).numpy()[0, ..., 0]
    # per axis: a slice-reach generator needs more halo along the slice axis than in-plane
    window = SlidingWindow(image.shape, core=(9, 11, 10), halo=generator.receptive_field, overlap=0.0)
    assert len(window) > 8  # interior tiles and flush-end tiles on every axis
    np.testing.assert_allclose(_tiled(generator, image, window), whole, atol=2e-5)


def test_tiles_beyond_the_edges_have_their_core_a_halo_in_from_every_side():
    shape, halo = (30, 41, 19), 4
    window = SlidingWindow(shape, core=(8, 16, 32), halo=halo, beyond_edges=True)
    assert window.input_shape == (16, 22, 27)  # equal cores + 2·halo on every axis, even one shorter than a core
    for tile in window.tiles():
        assert all(core.start == halo for core in tile.core_in_input)
        assert all(r.stop - r.start == n for r, n in zip(tile.input_region, window.input_shape))
    assert min(tile.input_region[0].start for tile in window.tiles()) == -halo


def test_edge_padded_reads_repeat_the_edge_voxels_outside_the_volume():
    volume = RNG.random((5, 6, 7), dtype=np.float32)
    read = edge_padded(lambda region: volume[region], volume.shape)
    np.testing.assert_array_equal(read((slice(-3, 8), slice(1, 4), slice(-2, 7))),
                                  np.pad(volume, [(3, 3), (0, 0), (2, 0)], mode="edge")[:, 1:4, :])
    np.testing.assert_array_equal(read((slice(1, 3), slice(0, 6), slice(2, 5))), volume[1:3, :, 2:5])


@pytest.mark.parametrize("variant, dilations", [("residual", ()), ("residual", (3,))], ids=["residual", "slice-reach"])
def test_beyond_the_edges_a_halo_of_the_receptive_field_equals_one_pass_over_the_edge_padded_volume(variant,
                                                                                                    dilations):
    generator = random_generator(variant, std=0.1, slice_dilations=dilations)
    image = RNG.random((37, 29, 26), dtype=np.float32)
    whole = one_pass_over_edge_padded(generator, image, 3.5)
    window = SlidingWindow(image.shape, core=(9, 11, 10), halo=generator.receptive_field, beyond_edges=True)
    read = edge_padded(lambda region: image[region], image.shape)
    result = sliding_window_inference(read, lambda batch: generator(
        {"image": batch[..., None], "scale": np.float32(3.5)}).numpy()[..., 0], window, batch_size=2)
    np.testing.assert_allclose(result, whole, atol=2e-5)


def test_blending_hides_seams_when_the_halo_is_short():
    generator = random_generator("residual", std=0.1)
    image = RNG.random((40, 40, 40), dtype=np.float32)
    whole = generator({"image": image[None, ..., None], "scale": np.float32(3.5)}).numpy()[0, ..., 0]
    errors = {}
    for name, overlap, blending in [("hard", 0.0, "constant"), ("gaussian", 0.5, "gaussian"), ("hann", 0.5, "hann")]:
        window = SlidingWindow(image.shape, core=12, halo=1, overlap=overlap, blending=blending)
        errors[name] = np.abs(_tiled(generator, image, window) - whole).max()
    assert errors["hard"] > 1e-3  # a one-voxel halo is too short for a radius of 4: the hard tiling has seams
    assert errors["gaussian"] < 0.6 * errors["hard"] and errors["hann"] < 0.6 * errors["hard"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="blending"):
        SlidingWindow((8, 8, 8), 4, blending="box")
    with pytest.raises(ValueError, match="overlap"):
        SlidingWindow((8, 8, 8), 4, overlap=1.0)
