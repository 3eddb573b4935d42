"""Stage 1's pixel loss in `keras.ops` only (any backend): the MSE on the patch's inner region, over the batch
or as each sample's log MSE. Shared by `SoupGAN` (TensorFlow, tf.distribute) and the backend-agnostic
`model.training.portable_training` (JAX on GPUs), so both optimise the same thing."""
from __future__ import annotations

import keras
from keras import ops

from model.training.train_config import PIXEL_LOSSES

LOG_MSE_EPSILON = 1e-5  # (normalised intensity)²: below any real scan's noise, keeps log finite on flat patches


def check_pixel_loss(kind: str) -> str:
    if kind not in PIXEL_LOSSES:
        raise ValueError(f"unknown pixel loss {kind!r}; choose from {', '.join(PIXEL_LOSSES)}")
    return kind


def inner_region(volume, margin: int):
    """The [B, D, H, W, C] patch without `margin` voxels at each spatial face, where the convolutions' zero
    padding stands in for tissue that whole-volume inference would see."""
    return volume[:, margin:-margin, margin:-margin, margin:-margin, :] if margin else volume


def per_sample_mse(target, prediction, margin: int = 0):
    """[B] float32 MSE of each sample's inner region (float32 under a mixed precision policy too)."""
    error = inner_region(ops.cast(prediction, "float32"), margin) - inner_region(ops.cast(target, "float32"), margin)
    return ops.mean(ops.square(error), axis=(1, 2, 3, 4))


def pixel_loss_value(per_sample, kind: str):
    """"mse": the batch MSE; "log-mse": the mean of log(MSE + ε), which weighs every sample's improvement in
    decibels, so x2's small corrections are not drowned by x6's large errors."""
    return ops.mean(ops.log(per_sample + LOG_MSE_EPSILON)) if kind == "log-mse" else ops.mean(per_sample)


@keras.saving.register_keras_serializable(package="soupgan")
class PixelLoss(keras.losses.Loss):
    """The same loss as a Keras loss for `compile`: per-sample values that Keras averages over the batch."""

    def __init__(self, kind: str = "mse", margin: int = 0, name: str = "pixel_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kind, self.margin = check_pixel_loss(kind), int(margin)

    def call(self, y_true, y_pred):
        per_sample = per_sample_mse(y_true, y_pred, self.margin)
        return ops.log(per_sample + LOG_MSE_EPSILON) if self.kind == "log-mse" else per_sample

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "margin": self.margin}
