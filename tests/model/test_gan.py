"""The SoupGAN trainer: .keras round trip of both stages, and what one train_step updates."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from model.networks.discriminator import build_discriminator
from model.training.gan import SoupGAN
from model.networks.generator import SoupGenerator
from model.training.train_config import TrainConfig
from model.training.trainer import build_trainer
from tests.model.keras_checks import randomise

SHAPE = (2, 16, 16, 16, 1)


def batch():
    rng = np.random.default_rng(0)
    target = rng.random(SHAPE, dtype=np.float32)
    return {"image": target + rng.normal(0, 0.1, SHAPE).astype(np.float32), "scale": np.array([2, 5], np.float32)}, target


def make(stage):
    """A tiny trainer for `stage`, built, compiled and with built optimizers, as `soupgan train` makes it."""
    keras.utils.set_random_seed(0)
    config = TrainConfig("", "", stage=stage, filters=4, blocks=1, disc_filters=4, vgg_weights="none",
                         learning_rate=1e-3, d_learning_rate=1e-3)
    return build_trainer(config, SHAPE[1:4])


@pytest.mark.parametrize("stage", ["mse", "gan"])
def test_train_step_updates_what_the_stage_trains(stage):
    trainer = make(stage)
    generator_before = [w.numpy().copy() for w in trainer.generator.weights]
    discriminator_before = [w.numpy().copy() for w in trainer.discriminator.weights] if stage == "gan" else []
    vgg_before = [w.numpy().copy() for w in trainer.perceptual.weights] if stage == "gan" else []
    logs = trainer.fit(tf.data.Dataset.from_tensors(batch()), epochs=1, verbose=0).history
    expected = {"loss", "mse", "psnr"} | ({"perceptual", "adversarial", "d_loss"} if stage == "gan" else set())
    assert set(logs) == expected
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(generator_before, trainer.generator.weights))
    if stage == "gan":
        assert any(not np.array_equal(a, w.numpy()) for a, w in zip(discriminator_before, trainer.discriminator.weights))
        assert all(np.array_equal(a, w.numpy()) for a, w in zip(vgg_before, trainer.perceptual.weights))  # frozen
        weights = trainer.perceptual_weight * logs["perceptual"][0] + 0.01 * logs["adversarial"][0] + 0.001 * logs["mse"][0]
        assert logs["loss"][0] == pytest.approx(weights, rel=1e-5)


@pytest.mark.parametrize("stage", ["mse", "gan"])
def test_trainer_survives_keras_round_trip(stage, tmp_path):
    trainer = make(stage)
    randomise(trainer)  # an untrained generator is the identity: a load restoring nothing would pass
    inputs, _ = batch()
    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.stage == stage
    unnamed = lambda model: {k: v for k, v in model.get_config().items() if k != "name"}  # noqa: E731
    assert unnamed(loaded.generator) == unnamed(trainer.generator)
    for key in ("perceptual_weight", "adversarial_weight", "mse_weight"):
        assert loaded.get_config()[key] == trainer.get_config()[key]
    np.testing.assert_array_equal(loaded(inputs), trainer(inputs))
    if stage == "gan":
        np.testing.assert_array_equal(loaded.discriminator(inputs["image"]), trainer.discriminator(inputs["image"]))
        assert isinstance(loaded.d_optimizer, keras.optimizers.Adam)


def test_half_a_gan_is_refused():
    with pytest.raises(ValueError, match="needs both a discriminator and a perceptual loss"):
        SoupGAN(SoupGenerator(filters=4, blocks=1), build_discriminator(4, 2))


def test_loss_margin_scores_only_the_inner_patch():
    config = TrainConfig("", "", filters=4, blocks=1, loss_margin=3)
    trainer = build_trainer(config, SHAPE[1:4])
    assert trainer.get_config()["loss_margin"] == 3
    inputs, target = batch()
    prediction = trainer.generator(inputs).numpy()
    inner = (slice(None), slice(3, -3), slice(3, -3), slice(3, -3))
    logs = trainer.evaluate(tf.data.Dataset.from_tensors((inputs, target)), verbose=0, return_dict=True)
    assert logs["mse"] == pytest.approx(np.mean((prediction[inner] - target[inner]) ** 2), rel=1e-5)
    spoiled = target.copy()
    spoiled[:, :3] += 5.0  # a change confined to the margin
    again = trainer.evaluate(tf.data.Dataset.from_tensors((inputs, spoiled)), verbose=0, return_dict=True)
    assert again["mse"] == pytest.approx(logs["mse"], rel=1e-6)
    with pytest.raises(Exception, match="--loss-margin 8 leaves nothing of a 16x16x16-voxel patch"):
        build_trainer(TrainConfig("", "", filters=4, blocks=1, loss_margin=8), SHAPE[1:4])


def test_log_mse_loss_is_the_mean_of_each_samples_log_error():
    trainer = build_trainer(TrainConfig(filters=4, blocks=1, loss_margin=2, pixel_loss="log-mse"), SHAPE[1:4])
    randomise(trainer)
    inputs, target = batch()
    prediction = trainer.generator(inputs).numpy()
    inner = (slice(None), slice(2, -2), slice(2, -2), slice(2, -2))
    per_sample = ((prediction[inner] - target[inner]) ** 2).mean(axis=(1, 2, 3, 4))
    logs = trainer.evaluate(tf.data.Dataset.from_tensors((inputs, target)), verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(np.mean(np.log(per_sample + 1e-5)), rel=1e-5)
    assert logs["mse"] == pytest.approx(per_sample.mean(), rel=1e-5)
    assert trainer.get_config()["pixel_loss"] == "log-mse"
