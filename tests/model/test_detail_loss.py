"""The offline tri-planar Laplacian pyramid term of the GAN stage."""
import keras
import numpy as np
import pytest
from scipy import ndimage

from model.networks.detail_loss import TriPlanarLaplacianLoss, plane_laplacians
from model.training.train_config import TrainConfig, check_restart
from pipeline.errors import InputError
from tests.conftest import phantom


def textured(shape=(2, 24, 24, 24, 1)) -> np.ndarray:
    volume = phantom(shape[1:4]) / 900.0
    return np.stack([volume, volume[::-1]])[..., None].astype(np.float32)


def test_plane_laplacians_are_the_2d_laplacians_of_each_view():
    volume = np.random.default_rng(0).random((1, 9, 10, 11, 1)).astype(np.float32)
    axial, coronal, sagittal = (np.asarray(plane) for plane in plane_laplacians(volume))
    inner = volume[0, 1:-1, 1:-1, 1:-1, 0]
    for plane, axes in ((axial, (1, 2)), (coronal, (0, 2)), (sagittal, (0, 1))):
        expected = sum(ndimage.correlate1d(volume[0, ..., 0], [1.0, -2.0, 1.0], axis=a) for a in axes)
        np.testing.assert_allclose(plane[0, ..., 0], expected[1:-1, 1:-1, 1:-1], atol=1e-5)
    assert axial.shape[1:4] == inner.shape


def test_zero_on_the_truth_and_growing_with_blur():
    loss = TriPlanarLaplacianLoss()
    truth = textured()
    blurred = [ndimage.gaussian_filter(truth, (0, s, s, s, 0)).astype(np.float32) for s in (0.5, 1.0, 2.0)]
    values = [float(loss(b, truth)) for b in blurred]
    assert float(loss(truth, truth)) == 0.0
    assert 0 < values[0] < values[1] < values[2]
    assert float(loss(truth + 0.25, truth)) < 1e-6  # blind to a constant: the MSE term holds the intensities


def test_its_gradient_sharpens_a_blurred_volume():
    loss = TriPlanarLaplacianLoss()
    truth = keras.ops.convert_to_tensor(textured())
    estimate = keras.Variable(ndimage.gaussian_filter(textured(), (0, 1, 1, 1, 0)).astype(np.float32))
    optimizer = keras.optimizers.Adam(3e-3)
    import tensorflow as tf

    before = float(loss(estimate, truth))
    for _ in range(40):
        with tf.GradientTape() as tape:
            value = loss(estimate, truth)
        optimizer.apply_gradients([(tape.gradient(value, estimate), estimate)])
    assert float(loss(estimate, truth)) < 0.7 * before


def test_too_small_volumes_are_refused_and_the_config_round_trips():
    with pytest.raises(ValueError, match="3 Laplacian pyramid levels need volumes of at least 12 voxels per side"):
        TriPlanarLaplacianLoss()(np.zeros((1, 8, 16, 16, 1), np.float32), np.zeros((1, 8, 16, 16, 1), np.float32))
    loss = TriPlanarLaplacianLoss(levels=2)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(again, TriPlanarLaplacianLoss) and again.levels == 2


def test_a_run_folder_from_before_the_choice_resumes_only_as_vgg19():
    older = {"stage": "gan", "init": "runs/mse"}  # a 0.4.0 config.json has no "perceptual"
    check_restart(older, TrainConfig(out="runs/gan", stage="gan", init="runs/mse", perceptual="vgg19"))
    with pytest.raises(InputError, match="perceptual changed"):
        check_restart(older, TrainConfig(out="runs/gan", stage="gan", init="runs/mse"))
    check_restart({"stage": "mse"}, TrainConfig(out="runs/mse"))  # the term never mattered to a stage-1 run
    with pytest.raises(InputError, match="unknown --perceptual 'lpips'"):
        TrainConfig(volumes=["a.nii"], steps_per_epoch=1, perceptual="lpips").validate()
