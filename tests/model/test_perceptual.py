"""The tri-planar VGG19-54 perceptual loss (random VGG weights here: ImageNet's cannot be downloaded)."""
import keras
import numpy as np
import pytest

from model.networks.perceptual import TriPlanarPerceptualLoss, vgg_weights_argument

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module")
def loss():
    keras.utils.set_random_seed(0)
    return TriPlanarPerceptualLoss(vgg_weights=None)


def pair(shape=(2, 16, 32, 24, 1)):
    target = RNG.random(shape, dtype=np.float32)
    return target + RNG.normal(0, 0.05, shape).astype(np.float32), target


def test_zero_for_identical_volumes_positive_otherwise(loss):
    prediction, target = pair()
    assert float(loss(target, target)) == 0.0
    assert float(loss(prediction, target)) > 0.0


def test_each_plane_is_its_own_slice_stack_and_the_loss_averages_three(loss):
    prediction, target = pair()
    planes = [float(value) for value in loss.plane_losses(prediction, target)]
    for axis, value in zip((1, 2, 3), planes):
        def slices(volume):
            moved = np.moveaxis(volume, axis, 1)
            return moved.reshape(-1, *moved.shape[2:])
        expected = np.mean(np.square(loss.features(slices(prediction)) - loss.features(slices(target))))
        np.testing.assert_allclose(value, expected, rtol=1e-4)
    assert len(set(planes)) == 3 and all(value > 0 for value in planes)
    np.testing.assert_allclose(float(loss(prediction, target)), np.mean(planes), rtol=1e-6)


def test_features_are_block5_conv4_before_its_relu(loss):
    images = RNG.random((3, 32, 32, 1), dtype=np.float32)
    features = loss.features(images).numpy()
    assert features.shape == (3, 2, 2, 512)
    assert features.min() < 0  # a ReLU output could not be negative
    vgg_relu = keras.Model(loss.trunk.input, loss.feature_conv(loss.trunk.output))
    rgb = keras.applications.vgg19.preprocess_input(np.repeat(images * 255.0, 3, axis=-1))
    np.testing.assert_allclose(np.maximum(features, 0), vgg_relu(rgb), rtol=1e-4, atol=1e-4)


def test_slice_sampling_compares_the_same_slices(loss):
    sampled = TriPlanarPerceptualLoss(vgg_weights=None, slices_per_plane=3)
    sampled.set_weights(loss.get_weights())
    prediction, target = pair()
    assert float(sampled(target, target)) == 0.0
    assert float(sampled(prediction, target)) > 0.0


def test_too_small_volumes_are_refused(loss):
    with pytest.raises(ValueError, match="at least 16 voxels per side"):
        loss(*pair((1, 16, 12, 16, 1)))


def test_config_round_trip(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    restored.set_weights(loss.get_weights())
    prediction, target = pair()
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(restored(prediction, target), loss(prediction, target), rtol=1e-6)


def test_weights_flag_values():
    assert vgg_weights_argument("none") is None and vgg_weights_argument(None) is None
    assert vgg_weights_argument("imagenet") == "imagenet"
    assert vgg_weights_argument("/site/vgg19_notop.h5") == "/site/vgg19_notop.h5"
