"""Custom layers and models: .keras round trips, and parameter interpolation between scales (Eq. 3)."""
import keras
import numpy as np
import pytest

from model.blocks import RRDB3D, ResidualBlock3D, ResidualDenseBlock3D
from model.discriminator import build_discriminator
from model.generator import SoupGenerator
from model.scale_conv import ScaleInterpolatedConv3D, scale_weights

RNG = np.random.default_rng(0)


def volume(batch=2, size=12, channels=1):
    return RNG.random((batch, size, size, size, channels), dtype=np.float32)


def randomise(model):
    """Give every weight (zero-initialised ones too) random values, so round trips compare something."""
    for weight in model.weights:
        weight.assign(RNG.normal(0, 0.1, weight.shape).astype(np.float32))


def round_trip(model, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    return keras.saving.load_model(path)


def wrap(layer, channels, with_scale):
    """A functional model around one layer, so the layer goes through a .keras file."""
    image = keras.Input((None, None, None, channels))
    if with_scale:
        scale = keras.Input(())
        return keras.Model([image, scale], layer(image, scale))
    return keras.Model(image, layer(image))


@pytest.mark.parametrize("layer, channels, with_scale", [
    (ScaleInterpolatedConv3D(3, name="sconv"), 2, True),
    (ResidualBlock3D(4), 4, False),
    (ResidualDenseBlock3D(4, 2), 4, False),
    (RRDB3D(4, 2), 4, False),
])
def test_layers_survive_keras_round_trip(layer, channels, with_scale, tmp_path):
    model = wrap(layer, channels, with_scale)
    randomise(model)
    x = volume(channels=channels)
    inputs = [x, np.array([2.0, 4.5], np.float32)] if with_scale else x
    loaded = round_trip(model, tmp_path)
    assert type(loaded.layers[-1]) is type(layer)
    assert loaded.layers[-1].get_config() == layer.get_config()
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


@pytest.mark.parametrize("variant", ["residual", "rrdb"])
def test_generator_round_trip_at_integer_and_fractional_scales(variant, tmp_path):
    generator = SoupGenerator(variant, filters=4, blocks=2, growth=2)
    x = volume()
    generator({"image": x, "scale": np.float32(2.0)})
    randomise(generator)
    loaded = round_trip(generator, tmp_path)
    assert loaded.get_config() == generator.get_config()
    for scale in (np.float32(2.0), np.float32(3.7), np.array([2.0, 6.0], np.float32)):
        np.testing.assert_array_equal(loaded({"image": x, "scale": scale}), generator({"image": x, "scale": scale}))


def test_discriminator_round_trip(tmp_path):
    discriminator = build_discriminator(filters=4, stages=2)
    x = volume(size=16)
    expected = discriminator(x)
    assert expected.shape == (2, 1)
    np.testing.assert_array_equal(round_trip(discriminator, tmp_path)(x), expected)


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


def test_receptive_radius_bounds_how_far_a_change_reaches():
    generator = SoupGenerator("residual", filters=4, blocks=2)
    image = RNG.random((37, 10, 9), dtype=np.float32)
    generator({"image": image[None, ..., None], "scale": np.float32(3)})
    randomise(generator)

    def run(x):
        return generator({"image": x[None, ..., None], "scale": np.float32(3.5)}).numpy()[0, ..., 0]

    perturbed = image.copy()
    perturbed[20] += 1.0  # a change reaches exactly `halo` slices either side, and no further
    changed = np.flatnonzero(np.abs(run(perturbed) - run(image)).max(axis=(1, 2)) > 0)
    halo = generator.receptive_radius
    assert changed.min() == 20 - halo and changed.max() == 20 + halo
