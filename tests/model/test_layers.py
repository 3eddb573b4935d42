"""Custom layers and models: .keras round trips, and parameter interpolation between scales (Eq. 3)."""
import keras
import numpy as np
import pytest

from model.networks.blocks import RRDB3D, ResidualBlock3D, ResidualDenseBlock3D
from model.networks.discriminator import build_discriminator
from model.networks.generator import SoupGenerator, float32_copy, grow_generator
from model.networks.scale_conv import ScaleInterpolatedConv3D, scale_weights
from pipeline.errors import InputError

from tests.model.keras_checks import (RNG, assert_jit_matches, assert_mixed_precision_matches, assert_round_trip,
                                     dtype_policy, randomise, round_trip)


def volume(batch=2, size=12, channels=1):
    return RNG.random((batch, size, size, size, channels), dtype=np.float32)


def wrap(layer, channels, with_scale):
    """A functional model around one layer, so the layer goes through a .keras file."""
    image = keras.Input((None, None, None, channels))
    if with_scale:
        scale = keras.Input(())
        return keras.Model([image, scale], layer(image, scale))
    return keras.Model(image, layer(image))


LAYERS = {
    "scale_conv": (lambda: ScaleInterpolatedConv3D(3, name="sconv"), 2, True),
    "residual_block": (lambda: ResidualBlock3D(4), 4, False),
    "slice_reach_block": (lambda: ResidualBlock3D(4, dilation=(3, 1, 1), identity_start=True), 4, False),
    "dense_block": (lambda: ResidualDenseBlock3D(4, 2), 4, False),
    "rrdb": (lambda: RRDB3D(4, 2), 4, False),
}


def layer_inputs(channels, with_scale):
    x = volume(channels=channels)
    return [x, np.array([2.0, 4.5], np.float32)] if with_scale else x


@pytest.mark.parametrize("name", LAYERS)
def test_layers_survive_keras_round_trip(name, tmp_path):
    make, channels, with_scale = LAYERS[name]
    layer = make()
    model = wrap(layer, channels, with_scale)
    inputs = layer_inputs(channels, with_scale)
    loaded = assert_round_trip(model, lambda m: m.predict(inputs, verbose=0), tmp_path)
    assert type(loaded.layers[-1]) is type(layer)
    assert loaded.layers[-1].get_config() == layer.get_config()


@pytest.mark.parametrize("name", LAYERS)
def test_layers_run_in_mixed_precision_and_under_xla(name):
    make, channels, with_scale = LAYERS[name]
    inputs = layer_inputs(channels, with_scale)
    call = lambda layer: layer(*inputs) if with_scale else layer(inputs)  # noqa: E731
    assert_mixed_precision_matches(make, call, atol=0.05)
    layer = make()
    call(layer)
    assert_jit_matches(layer, call)


def generator_call(x, scale):
    return lambda generator: generator({"image": x, "scale": scale})


@pytest.mark.parametrize("variant", ["residual", "rrdb"])
def test_generator_round_trip_at_integer_and_fractional_scales(variant, tmp_path):
    generator = SoupGenerator(variant, filters=4, blocks=2, growth=2)
    x = volume()
    generator({"image": x, "scale": np.float32(2.0)})
    loaded = assert_round_trip(generator, generator_call(x, np.float32(3.7)), tmp_path)
    for scale in (np.float32(2.0), np.array([2.0, 6.0], np.float32)):
        np.testing.assert_array_equal(loaded({"image": x, "scale": scale}), generator({"image": x, "scale": scale}))
    assert not loaded.consistent_input and not loaded.flow_input
    generator.consistent_input = True  # what the generator expects its input to be travels with it
    assert round_trip(generator, tmp_path).consistent_input
    generator.consistent_input, generator.flow_input = False, True
    assert round_trip(generator, tmp_path).flow_input


@pytest.mark.parametrize("scale", [np.float32(3.5), np.array([2.0, 6.0], np.float32)], ids=["scalar", "per-sample"])
def test_generator_trains_in_mixed_precision_and_saves_float32(scale, tmp_path):
    x = volume()
    make = lambda: SoupGenerator(filters=4, blocks=2)  # noqa: E731
    # the residual stays float32: the output matches float32 to the float16 error of the correction alone
    assert_mixed_precision_matches(make, generator_call(x, scale), atol=0.02)
    assert_jit_matches(make(), generator_call(x, scale))
    with dtype_policy("mixed_float16"):
        mixed = make()
        mixed({"image": x, "scale": scale})
    randomise(mixed)
    saved = float32_copy(mixed)
    assert saved.compute_dtype == "float32" and all(layer.compute_dtype == "float32" for layer in saved.layers)
    loaded = assert_round_trip(saved, generator_call(x, scale), tmp_path)
    np.testing.assert_allclose(loaded({"image": x, "scale": scale}), np.asarray(mixed({"image": x, "scale": scale}),
                                                                                   np.float32), atol=0.02)


def test_discriminator_round_trip(tmp_path):
    discriminator = build_discriminator(filters=4, stages=2)
    x = volume(size=16)
    assert discriminator(x).shape == (2, 1)
    assert_round_trip(discriminator, lambda model: model(x), tmp_path)


def test_untrained_generator_is_the_identity():
    """The zero exit module makes a fresh generator return its (cubic-upsampled) input unchanged."""
    x = volume()
    np.testing.assert_array_equal(SoupGenerator(filters=4, blocks=1)({"image": x, "scale": np.float32(3)}), x)


def test_scale_weights_are_hat_functions():
    np.testing.assert_array_equal(scale_weights(np.float32(4), (2, 3, 4, 5, 6)), [0, 0, 1, 0, 0])
    np.testing.assert_allclose(scale_weights(np.float32(2.25), (2, 3, 4, 5, 6)), [0.75, 0.25, 0, 0, 0])
    np.testing.assert_allclose(scale_weights(np.array([5.5, 6.0], np.float32), (2, 3, 4, 5, 6)),
                               [[0, 0, 0, 0.5, 0.5], [0, 0, 0, 0, 1]])


def test_integer_scale_uses_exactly_that_scales_parameters():
    layer = ScaleInterpolatedConv3D(3)
    x = volume(channels=2)
    layer.build(x.shape)
    layer.bias.assign(RNG.normal(size=layer.bias.shape).astype(np.float32))
    for index, scale in enumerate(layer.scales):
        reference = keras.layers.Conv3D(3, 3, padding="same")
        reference.build(x.shape)
        reference.set_weights([layer.kernel.numpy()[index], layer.bias.numpy()[index]])
        np.testing.assert_allclose(layer(x, np.float32(scale)), reference(x), atol=1e-6)


def test_fractional_scale_interpolates_parameters_not_outputs_of_branches():
    """At s=2.5 the generator runs with θ = (θ₂ + θ₃)/2 (paper Eq. 3): equal to a copy whose scale-2
    entrance/exit hold the averaged parameters, and its output lies between the two scales' outputs."""
    generator = SoupGenerator(filters=4, blocks=1)
    x = volume()
    generator({"image": x, "scale": np.float32(2)})
    randomise(generator)
    halfway = generator({"image": x, "scale": np.float32(2.5)}).numpy()

    averaged = SoupGenerator.from_config(generator.get_config())
    averaged({"image": x, "scale": np.float32(2)})
    averaged.set_weights(generator.get_weights())
    for module in (averaged.entrance, averaged.exit):
        for weight in (module.kernel, module.bias):
            values = weight.numpy()
            values[0] = (values[0] + values[1]) / 2
            weight.assign(values)
    np.testing.assert_allclose(averaged({"image": x, "scale": np.float32(2)}), halfway, atol=1e-5)

    at_2 = generator({"image": x, "scale": np.float32(2)}).numpy()
    at_3 = generator({"image": x, "scale": np.float32(3)}).numpy()
    assert not np.allclose(at_2, at_3)
    assert not np.allclose(halfway, at_2) and not np.allclose(halfway, at_3)
    assert np.linalg.norm(halfway - at_2) < np.linalg.norm(at_3 - at_2)
    assert np.linalg.norm(halfway - at_3) < np.linalg.norm(at_3 - at_2)


def test_per_sample_scales_equal_one_call_per_scale():
    """A training batch mixing scales gives each sample what a single-scale call would."""
    generator = SoupGenerator(filters=4, blocks=1)
    x = volume(batch=3)
    scales = np.array([2.0, 4.5, 6.0], np.float32)
    generator({"image": x, "scale": scales})
    randomise(generator)
    mixed = generator({"image": x, "scale": scales}).numpy()
    for i, scale in enumerate(scales):
        np.testing.assert_allclose(mixed[i:i + 1], generator({"image": x[i:i + 1], "scale": scale}), atol=1e-5)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown generator variant 'unet'"):
        SoupGenerator("unet")


@pytest.mark.parametrize("dilations", [(), (2, 3)], ids=["plain", "slice-reach"])
def test_receptive_field_bounds_how_far_a_change_reaches_along_each_axis(dilations):
    generator = SoupGenerator("residual", filters=4, blocks=2, slice_dilations=dilations)
    image = RNG.random((61, 37, 9), dtype=np.float32)
    generator({"image": image[None, ..., None], "scale": np.float32(3)})
    randomise(generator)

    def run(x):
        return generator({"image": x[None, ..., None], "scale": np.float32(3.5)}).numpy()[0, ..., 0]

    perturbed = image.copy()
    perturbed[30, 18, 4] += 1.0  # a change reaches exactly the receptive field along each axis, and no further
    changed = np.abs(run(perturbed) - run(image)) > 0
    slices, rows = np.flatnonzero(changed.any(axis=(1, 2))), np.flatnonzero(changed.any(axis=(0, 2)))
    along_slices, in_plane, _ = generator.receptive_field
    assert (slices.min(), slices.max()) == (30 - along_slices, 30 + along_slices)
    assert (rows.min(), rows.max()) == (18 - in_plane, 18 + in_plane)
    assert generator.receptive_radius == along_slices == 6 + 2 * sum(dilations)


def test_a_new_reach_block_is_the_identity_and_learns():
    block = ResidualBlock3D(4, dilation=(4, 1, 1), identity_start=True)
    x = volume(channels=4)
    np.testing.assert_array_equal(block(x), x)
    assert np.abs(block.conv_a.kernel.numpy()).max() > 0  # only the second convolution starts at zero


def test_grown_generator_computes_what_the_trained_one_did_and_round_trips(tmp_path):
    trained = SoupGenerator(filters=4, blocks=2)
    x = volume(size=16)
    trained({"image": x, "scale": np.float32(3)})
    randomise(trained)
    grown = grow_generator(trained, (2, 4))
    assert grown.slice_dilations == (2, 4) and len(grown.reach) == 2
    assert grown.receptive_field == (6 + 2 * (2 + 4), 10, 10) and trained.receptive_field == (6, 6, 6)
    for scale in (np.float32(2), np.float32(4.5), np.array([3.0, 6.0], np.float32)):
        np.testing.assert_array_equal(grown({"image": x, "scale": scale}), trained({"image": x, "scale": scale}))
    randomise(grown)  # trained reach blocks change the output, and survive a .keras file
    assert not np.allclose(grown({"image": x, "scale": np.float32(3)}), trained({"image": x, "scale": np.float32(3)}))
    loaded = assert_round_trip(grown, generator_call(x, np.float32(3.5)), tmp_path)
    assert loaded.get_config()["slice_dilations"] == [2, 4]
    with pytest.raises(InputError, match=r"already has slice dilations \[2, 4\]"):
        grow_generator(grown, (8,))
