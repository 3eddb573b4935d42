"""3D perceptual loss: every axial, sagittal and coronal slice through ImageNet VGG19, block5_conv4
features *before* its ReLU (VGG19-54), mean squared; the planes averaged.

Weights: "imagenet" (Keras downloads them), a local `.h5` path (sites without internet), or None
(random, for tests). Optionally a random subset of slices per plane and call, for speed.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

PLANES = ("axial", "coronal", "sagittal")  # volume axes 1, 2, 3 of [B, D, H, W, 1] (slice axis first)
FEATURE_LAYER = "block5_conv4"
MIN_SIDE = 16  # VGG19 pools 4 times before block5: smaller slices have no features left


def vgg_weights_argument(spec: str | None) -> str | None:
    """Map a command-line `--vgg-weights` value ("imagenet", "none" or a path) to keras.applications'."""
    if spec is None or str(spec).lower() == "none":
        return None
    return str(spec)


@keras.saving.register_keras_serializable(package="soupgan")
class TriPlanarPerceptualLoss(keras.layers.Layer):
    """`loss(prediction, target)` → scalar; `plane_losses` gives the three planes' terms separately.

    Volumes are normalised intensities [B, D, H, W, 1] (≈ [0, 1]); they are mapped to 0..255 grey, copied
    to three channels and given VGG's own preprocessing. The VGG weights are frozen.
    """

    def __init__(self, vgg_weights: str | None = "imagenet", slices_per_plane: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.vgg_weights = vgg_weights_argument(vgg_weights)
        self.slices_per_plane = int(slices_per_plane) if slices_per_plane else None
        vgg = keras.applications.VGG19(include_top=False, weights=self.vgg_weights, input_shape=(None, None, 3))
        vgg.trainable = False
        self.feature_conv = vgg.get_layer(FEATURE_LAYER)
        self.trunk = keras.Model(vgg.input, self.feature_conv.input, name="vgg19_to_block5_conv3")
        self.trunk.trainable = False

    def features(self, images):
        """block5_conv4 pre-activation features of grey images [N, h, w, 1] in normalised intensities."""
        rgb = keras.applications.vgg19.preprocess_input(ops.repeat(images * 255.0, 3, axis=-1))
        hidden = self.trunk(rgb, training=False)
        return ops.conv(hidden, self.feature_conv.kernel, padding="same") + self.feature_conv.bias

    def _slices(self, volume, axis, indices):
        """The slices of `volume` across `axis` (1..3), as a batch of 2D images [N, h, w, 1]."""
        moved = ops.moveaxis(volume, axis, 1)
        if indices is not None:
            moved = ops.take(moved, indices, axis=1)
        shape = ops.shape(moved)
        return ops.reshape(moved, (-1, shape[2], shape[3], shape[4]))

    def plane_losses(self, prediction, target):
        """[axial, coronal, sagittal] mean squared feature differences."""
        if any(side is not None and side < MIN_SIDE for side in prediction.shape[1:4]):
            raise ValueError(f"the perceptual loss needs volumes of at least {MIN_SIDE} voxels per side "
                             f"(got {tuple(prediction.shape[1:4])})")
        losses = []
        for axis in (1, 2, 3):
            indices = None
            if self.slices_per_plane:
                indices = tf.random.shuffle(tf.range(tf.shape(prediction)[axis]))[: self.slices_per_plane]
            predicted = self.features(self._slices(prediction, axis, indices))
            reference = ops.stop_gradient(self.features(self._slices(target, axis, indices)))
            losses.append(ops.mean(ops.square(predicted - reference)))
        return losses

    def call(self, prediction, target):
        return ops.mean(ops.stack(self.plane_losses(prediction, target)))

    def get_config(self):
        return {**super().get_config(), "vgg_weights": self.vgg_weights, "slices_per_plane": self.slices_per_plane}
