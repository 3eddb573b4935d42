"""Whole-volume super-resolution: raw intensities in and out (CT stays in HU), geometry of pipeline.method.geometry,
the whole thick volume's window, lazily upsampled in-plane columns, and the shipped default weights."""
import json
import shutil

import numpy as np
import pytest

import model.weights.model_source as model_source
from model.networks.generator import SoupGenerator
from model.inference.sliding_window import SlidingWindow
from model.inference.super_resolve import Tiling, UpsampledColumns, compiled_predictor, super_resolve, tiled_over_volume
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.consistency import make_consistent, slab_means_matrix
from pipeline.errors import InputError
from pipeline.method.geometry import upsampled_affine
from pipeline.method.interpolation import upsample, upsample_volume
from pipeline.method.normalization import robust_window
from pipeline.method.slice_flow import flow_upsample, input_upsample
from pipeline.volume import Volume
from tests.conftest import phantom
from tests.generators import one_pass_over_edge_padded, random_generator

RNG = np.random.default_rng(0)
CT_AFFINE = np.array([[-0.7, 0, 0, 120.0], [0, -0.7, 0, 95.0], [0, 0, 5.0, -300.0], [0, 0, 0, 1]])


def ct_volume(shape=(40, 36, 9)):
    """A thick-slice CT-like phantom in HU: air at -1000, tissue around 40, bone above 700."""
    return Volume(phantom(shape) * 1.2 - 1000.0, CT_AFFINE, "CT")


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
@pytest.mark.parametrize("scale", [2, 2.5, 6])
def test_untrained_generator_is_tricubic_in_hounsfield_units_with_exact_geometry(criterion, scale):
    ct = ct_volume()
    generator = SoupGenerator(filters=4, blocks=1)  # exit starts at zero: exactly cubic interpolation
    result = super_resolve(ct, generator, scale, criterion, tiling=Tiling((8, 16, 16)))
    tricubic = upsample_volume(ct, scale, criterion)
    assert result.shape == tricubic.shape and result.modality == "CT" and result.volume_id == ct.volume_id
    np.testing.assert_allclose(result.affine, tricubic.affine, atol=1e-9)
    # HU through normalise/denormalise; the spline already keeps thin-to-thin's measured slices, while its
    # slab means are not thin-to-thick's thick slices until they are restored
    expected = make_consistent(tricubic.data.copy(), ct.data, scale, criterion, axis=2)
    np.testing.assert_allclose(result.data, expected, atol=1e-3)
    assert result.data.min() < -990  # still Hounsfield units


def test_tiled_equals_one_pass_and_uses_the_whole_thick_volumes_window():
    ct = ct_volume((30, 34, 8))
    generator = random_generator()
    tiled = super_resolve(ct, generator, 3, tiling=Tiling((7, 9, 11)))
    # by hand: window of the whole thick volume, cubic, normalise, edge padding by the receptive field, one
    # pass, crop, denormalise
    window = robust_window(ct.data)
    image = window.normalize(np.moveaxis(upsample(ct.data, 3, THIN_TO_THIN, axis=2), 2, 0))
    output = one_pass_over_edge_padded(generator, image, 3)
    expected = np.moveaxis(window.denormalize(output), 0, 2)
    expected[..., ::3] = ct.data  # thin-to-thin: the measured slices as measured
    np.testing.assert_allclose(tiled.data, expected, atol=2e-5 * np.ptp(expected))
    np.testing.assert_allclose(tiled.affine, upsampled_affine(ct.affine, 2, 3, THIN_TO_THIN))


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
def test_a_scan_that_ends_inside_tissue_meets_no_wall_of_air_at_its_edges(criterion):
    # a uniform slab of tissue: a translation-invariant network must change it uniformly, up to the last voxel
    # on every side (and thin-to-thick's slab means then restore the tissue exactly); the network's own zero
    # padding (tiles kept inside the volume) bends every edge voxel, consistency or not
    tissue = Volume(np.full((24, 20, 10), 350.0, np.float32), CT_AFFINE, "CT")
    tissue.data[0, 0, 0] = -1000.0  # one voxel of air, so the window is not degenerate
    generator = random_generator(std=0.3)
    # the cubic spline spreads the air voxel along the slice axis (2) only, the network by its radius in-plane;
    # slices 1, 4, 7, ... are computed by the network under both criteria
    inside = (slice(generator.receptive_field[1] + 1, None), slice(None), slice(1, None, 3))
    result = super_resolve(tissue, generator, 3, criterion, tiling=Tiling((8, 16, 16))).data[inside]
    zero_padded = tiled_over_volume(tissue, compiled_predictor(generator, 3), 3, criterion, None,
                                    lambda shape: SlidingWindow(shape, (8, 16, 16), generator.receptive_field))
    zero_padded = make_consistent(zero_padded.data, tissue.data, 3, criterion, axis=2)[inside]
    assert np.ptp(zero_padded) > 0.5
    assert np.ptp(result) < 1e-3 * np.ptp(zero_padded)
    if criterion == THIN_TO_THICK:
        np.testing.assert_allclose(result, 350.0, atol=1e-3)
    else:
        assert abs(float(np.median(result)) - 350.0) > 0.5  # the random network does change the tissue


@pytest.mark.parametrize("scale", [2, 2.5, 4])
def test_thin_to_thin_keeps_the_measured_slices_and_changes_the_others(scale):
    ct = ct_volume()
    result = super_resolve(ct, random_generator(), scale, THIN_TO_THIN, tiling=Tiling((8, 16, 16))).data
    tricubic = upsample_volume(ct, scale, THIN_TO_THIN).data
    step = 2 if scale == 2.5 else 1  # at x2.5 every other thick slice falls on the thin grid
    measured = np.arange(0, ct.shape[2], step)
    np.testing.assert_array_equal(result[..., np.round(measured * scale).astype(int)], ct.data[..., measured])
    between = [j for j in range(result.shape[2]) if j not in np.round(measured * scale)]
    assert np.abs(result[..., between] - tricubic[..., between]).max() > 1.0  # the network still acts there (HU)


@pytest.mark.parametrize("scale", [2, 3, 2.5])
def test_thin_to_thick_output_averages_back_to_the_thick_slices(scale):
    ct = ct_volume()
    result = super_resolve(ct, random_generator(), scale, THIN_TO_THICK, tiling=Tiling((8, 16, 16))).data
    means = slab_means_matrix(ct.shape[2], result.shape[2], scale)
    np.testing.assert_allclose(result @ means.T, ct.data, atol=1e-4 * np.ptp(ct.data))
    tricubic = upsample_volume(ct, scale, THIN_TO_THICK).data
    assert np.abs(result - tricubic).max() > 1.0  # the network still acts (HU)
    assert np.abs(tricubic @ means.T - ct.data).max() > 1.0  # which the spline alone would not give


def test_a_generator_trained_on_consistent_inputs_gets_them():
    ct = ct_volume((30, 34, 8))
    generator = random_generator()
    generator.consistent_input = True
    result = super_resolve(ct, generator, 3, THIN_TO_THICK, tiling=Tiling((7, 9, 11))).data
    window = robust_window(ct.data)
    thin = input_upsample(np.moveaxis(ct.data, 2, 0), 3, THIN_TO_THICK, axis=0, consistent=True)
    output = window.denormalize(one_pass_over_edge_padded(generator, window.normalize(thin), 3))
    expected = np.moveaxis(make_consistent(output, np.moveaxis(ct.data, 2, 0), 3, THIN_TO_THICK, axis=0), 0, 2)
    np.testing.assert_allclose(result, expected, atol=2e-5 * np.ptp(expected))
    generator.consistent_input = False  # the same weights on the plain spline: another result
    assert np.abs(super_resolve(ct, generator, 3, THIN_TO_THICK, tiling=Tiling((7, 9, 11))).data - result).max() > 1.0


def test_a_generator_trained_on_flow_guided_inputs_gets_them_whole_slice_by_whole_slice():
    """A `flow_input` generator's input is the flow-guided interpolation of the normalised thick volume (whole
    slices, whatever the tiles); the untrained one returns exactly that interpolation, in HU."""
    ct = ct_volume((30, 34, 8))
    generator = SoupGenerator(filters=4, blocks=1, flow_input=True)
    window = robust_window(ct.data)
    flow = window.denormalize(flow_upsample(window.normalize(ct.data), 3, THIN_TO_THIN, axis=2))
    identity = super_resolve(ct, generator, 3, THIN_TO_THIN, tiling=Tiling((7, 9, 11)))
    np.testing.assert_allclose(identity.data, flow, atol=1e-4 * np.ptp(flow))
    assert np.abs(flow - upsample(ct.data, 3, THIN_TO_THIN, axis=2)).max() > 1.0  # not the spline
    trained = random_generator()
    trained.flow_input = True
    result = super_resolve(ct, trained, 3, THIN_TO_THIN, tiling=Tiling((7, 9, 11))).data
    image = window.normalize(np.moveaxis(flow, 2, 0))
    expected = np.moveaxis(window.denormalize(one_pass_over_edge_padded(trained, image, 3)), 0, 2)
    expected[..., ::3] = ct.data
    np.testing.assert_allclose(result, expected, atol=2e-5 * np.ptp(expected))


def test_other_slice_axes_and_overrides():
    data = np.moveaxis(ct_volume().data, 2, 0)  # slices along axis 0
    affine = CT_AFFINE[:, [2, 0, 1, 3]]
    volume = Volume(data, affine, "CT")
    result = super_resolve(volume, SoupGenerator(filters=4, blocks=1), 4)
    assert result.shape == ((9 - 1) * 4 + 1, 40, 36)
    forced = super_resolve(volume, SoupGenerator(filters=4, blocks=1), 2, axis=1)
    assert forced.shape == (9, 79, 36)


def test_upsampled_columns_are_exact_in_plane_chunks():
    thick = RNG.random((7, 20, 18), dtype=np.float32)
    window = robust_window(thick)
    columns = UpsampledColumns(thick, 3.5, THIN_TO_THICK, window)
    whole = window.normalize(upsample(thick, 3.5, THIN_TO_THICK, axis=0))
    assert columns.shape == whole.shape
    region = (slice(4, 15), slice(3, 11), slice(9, 18))
    np.testing.assert_allclose(columns(region), whole[region], atol=1e-6)


def test_scales_outside_the_model_are_refused_not_clipped():
    for scale in (1.5, 6.5):
        with pytest.raises(InputError, match=r"outside the model's range \[2, 6\]"):
            super_resolve(ct_volume(), SoupGenerator(filters=4, blocks=1), scale)


def test_default_weights_load_after_their_sha256_check():
    card = model_source.model_card()
    assert THIN_TO_THIN in card["models"] and THIN_TO_THICK in card["models"]
    generator = model_source.resolve_generator(None, THIN_TO_THICK)
    assert isinstance(generator, SoupGenerator) and generator.scales == (2, 3, 4, 5, 6)
    assert np.abs(generator.exit.kernel.numpy()).max() > 0  # trained, not the zero-exit identity


def test_tampered_default_weights_are_refused(tmp_path, monkeypatch):
    shutil.copytree(model_source.DEFAULT_WEIGHTS, tmp_path / "weights")
    path = tmp_path / "weights" / model_source.model_card()["models"][THIN_TO_THIN]["file"]
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    monkeypatch.setattr(model_source, "DEFAULT_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(model_source, "MODEL_CARD", str(tmp_path / "weights" / "model_card.json"))
    with pytest.raises(InputError, match="fail their sha256 check"):
        model_source.resolve_generator(None, THIN_TO_THIN)


def test_run_folders_must_match_the_criterion(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"criterion": THIN_TO_THICK}))
    random_generator().save(str(run / "best_generator.keras"))
    assert isinstance(model_source.resolve_generator(str(run), THIN_TO_THICK), SoupGenerator)
    with pytest.raises(InputError, match="trained for thin-to-thick, not thin-to-thin"):
        model_source.resolve_generator(str(run), THIN_TO_THIN)
    with pytest.raises(InputError, match="not a training run folder"):
        model_source.resolve_generator(str(tmp_path), THIN_TO_THIN)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a soupgan generator"):
        model_source.resolve_generator(str(tmp_path / "junk.keras"), THIN_TO_THIN)
