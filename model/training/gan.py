"""SOUP-GAN's trainer: a keras.Model whose `train_step` updates D, then G.

With no discriminator it is stage 1 (G alone on MSE); with one it is stage 2:
L_G = w_per·L_per + w_adv·L_GAN + w_mse·L_MSE (paper: 1, 0.01, 0.001). Losses are per-replica
means divided once by the number of replicas, because `apply_gradients` sums replicas' gradients.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from model.networks.generator import SoupGenerator
from model.training.pixel_loss import check_pixel_loss, per_sample_mse, pixel_loss_value


def _per_replica(loss):
    """Scale a per-replica mean loss so the all-reduce SUM of gradients gives the global-batch mean."""
    return loss / tf.distribute.get_strategy().num_replicas_in_sync


def _bce_logits(label: float, logits):
    """Mean binary cross-entropy of discriminator logits against a constant real (1) or fake (0) label."""
    return ops.mean(keras.losses.binary_crossentropy(ops.full_like(logits, label), logits, from_logits=True))


@keras.saving.register_keras_serializable(package="soupgan")
class SoupGAN(keras.Model):
    """Trains `generator` on ({"image", "scale"}, target) batches of normalised patches."""

    def __init__(self, generator: SoupGenerator, discriminator: keras.Model | None = None,
                 perceptual: keras.layers.Layer | None = None, perceptual_weight: float = 1.0,
                 adversarial_weight: float = 0.01, mse_weight: float = 0.001, loss_margin: int = 0,
                 pixel_loss: str = "mse", **kwargs):
        super().__init__(**kwargs)
        if (discriminator is None) != (perceptual is None):
            raise ValueError("stage 2 needs both a discriminator and a perceptual loss; stage 1 neither")
        self.generator = generator
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.perceptual_weight = float(perceptual_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.mse_weight = float(mse_weight)
        # Voxels left out of the MSE at each patch face: there the convolutions' zero padding stands in
        # for tissue, which whole-volume inference never sees (0 keeps the whole patch).
        self.loss_margin = int(loss_margin)
        self.pixel_loss = check_pixel_loss(pixel_loss)  # stage 1's loss (`model.training.pixel_loss`)
        self.d_optimizer = None
        names = ["loss", "mse", "psnr"] + (["perceptual", "adversarial", "d_loss"] if self.is_gan else [])
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def is_gan(self) -> bool:
        return self.discriminator is not None

    @property
    def stage(self) -> str:
        return "gan" if self.is_gan else "mse"

    def compile(self, optimizer, d_optimizer=None, **kwargs):
        """`optimizer` updates G; `d_optimizer` (stage 2) updates D. Build both inside the strategy scope."""
        if self.is_gan and d_optimizer is None:
            raise ValueError("stage 2 needs a d_optimizer")
        super().compile(optimizer=optimizer, **kwargs)
        self.d_optimizer = d_optimizer

    def build_optimizers(self):
        """Create the optimizers' slots now (inside `strategy.scope()`), as MirroredStrategy requires."""
        self.optimizer.build(self.generator.trainable_variables)
        if self.is_gan:
            self.d_optimizer.build(self.discriminator.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Skip Keras' symbolic build once `build` and `build_optimizers` have run. Keras 3.15 makes it by
        `strategy.reduce` of a first batch, which MultiWorkerMirroredStrategy cannot do for a nested
        batch ("unsupported type dict"), and there is nothing left for it to build."""
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def build(self, input_shape):
        if not self.generator.built:
            self.generator.build(input_shape)
        if self.is_gan and not self.discriminator.built:
            self.discriminator.build(tuple(input_shape["image"]))
        self.built = True

    def _generator_losses(self, target, prediction, fake_logits=None):
        prediction = ops.cast(prediction, "float32")  # losses in float32 under a mixed precision policy too
        target = ops.cast(target, "float32")
        per_sample = per_sample_mse(target, prediction, self.loss_margin)
        mse = ops.mean(per_sample)
        losses = {"mse": mse, "psnr": -10.0 * ops.log(ops.maximum(mse, 1e-12)) / ops.log(10.0)}
        if not self.is_gan:
            losses["loss"] = pixel_loss_value(per_sample, self.pixel_loss)
            return losses
        losses["perceptual"] = self.perceptual(prediction, target)
        losses["adversarial"] = _bce_logits(1.0, fake_logits)
        losses["loss"] = (self.perceptual_weight * losses["perceptual"] + self.adversarial_weight * losses["adversarial"]
                          + self.mse_weight * mse)
        return losses

    def _record(self, values, target):
        """Add a batch's values to the means, weighted by its size, so a mean is over pairs:
        - a validation pass's smaller last batch counts for what it holds, and a replica it leaves empty (its
          values NaN, a mean over nothing) adds nothing;
        - at the end of a pass of unknown length, Keras 3.15's graph-mode loop still runs the updates that do not
          depend on the data: a constant count there added a phantom batch (keras-team/keras#23084), a count
          taken from the data does not."""
        batch_size = ops.cast(ops.shape(target)[0], "float32")
        for name, value in values.items():
            value = ops.where(batch_size > 0, ops.cast(value, "float32"), 0.0)
            self.trackers[name].update_state(value, sample_weight=batch_size)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 reduces logs with strategy.reduce("MEAN", axis=0) on multi-worker, which fails on
            # scalars (tensorflow/tensorflow#72388); shape [1] reduces to the same scalar.
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def train_step(self, data):
        inputs, target, _ = keras.utils.unpack_x_y_sample_weight(data)
        values = {}
        with tf.GradientTape() as g_tape:
            prediction = self.generator(inputs, training=True)
            fake_logits = None
            if self.is_gan:
                with tf.GradientTape() as d_tape:
                    d_loss = (_bce_logits(1.0, self.discriminator(target, training=True))
                              + _bce_logits(0.0, self.discriminator(ops.stop_gradient(prediction), training=True)))
                    scaled_d_loss = self.d_optimizer.scale_loss(_per_replica(d_loss))
                with g_tape.stop_recording():
                    variables = self.discriminator.trainable_variables
                    self.d_optimizer.apply_gradients(zip(d_tape.gradient(scaled_d_loss, variables), variables))
                values["d_loss"] = d_loss
                fake_logits = self.discriminator(prediction, training=True)
            losses = self._generator_losses(target, prediction, fake_logits)
            scaled_loss = self.optimizer.scale_loss(_per_replica(losses["loss"]))  # loss scaling (mixed_float16)
        variables = self.generator.trainable_variables
        self.optimizer.apply_gradients(zip(g_tape.gradient(scaled_loss, variables), variables))
        return self._record({**values, **losses}, target)

    def test_step(self, data):
        inputs, target, _ = keras.utils.unpack_x_y_sample_weight(data)
        prediction = self.generator(inputs, training=False)
        fake_logits = self.discriminator(prediction, training=False) if self.is_gan else None
        return self._record(self._generator_losses(target, prediction, fake_logits), target)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {**super().get_config(), "generator": serialize(self.generator),
                "discriminator": serialize(self.discriminator), "perceptual": serialize(self.perceptual),
                "perceptual_weight": self.perceptual_weight, "adversarial_weight": self.adversarial_weight,
                "mse_weight": self.mse_weight, "loss_margin": self.loss_margin, "pixel_loss": self.pixel_loss}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "perceptual"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        if self.d_optimizer is not None:
            config["d_optimizer"] = keras.saving.serialize_keras_object(self.d_optimizer)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        d_optimizer = keras.saving.deserialize_keras_object(config.pop("d_optimizer", None))
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer", None))
        self.compile(optimizer, d_optimizer=d_optimizer, **{k: v for k, v in config.items() if v is not None})
