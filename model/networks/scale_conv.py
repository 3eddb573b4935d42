"""Scale-specific 3D convolution with parameter interpolation between integer scales (paper Eq. 3).

One kernel per integer scale; a call at scale s uses θₛ = (1−α)θₘ + αθₘ₊₁ with m = ⌊s⌋, α = s − m,
so a call at one scale (inference) costs one convolution, not one per branch. A batch whose samples
have different scales (training) convolves with every scale's kernel and mixes the outputs per sample
with the same weights — for a single convolution that is exactly the same interpolation (the
operation is linear in its parameters), and it lets every step train every scale.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from pipeline.config import SCALES


def scale_weights(scale, scales: Sequence[int]):
    """Hat-function weights [..., len(scales)] of `scale` (any shape): one-hot at an integer, two
    neighbours between. Scales are clipped to [min(scales), max(scales)]; callers validate user input.
    """
    grid = ops.convert_to_tensor([float(s) for s in scales], dtype="float32")
    scale = ops.clip(ops.cast(scale, "float32"), grid[0], grid[-1])
    return ops.maximum(0.0, 1.0 - ops.abs(grid - ops.expand_dims(scale, -1)))


@keras.saving.register_keras_serializable(package="soupgan")
class ScaleInterpolatedConv3D(keras.layers.Layer):
    """Conv3D ('same' padding) whose kernel and bias are interpolated from per-scale parameters.

    Called as `layer(x, scale)` with x [B, D, H, W, C] and either a scalar scale (one interpolated
    kernel) or a per-sample scale vector [B] (every kernel, outputs mixed per sample).
    """

    def __init__(self, filters: int, kernel_size: int = 3, scales: Sequence[int] = SCALES,
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.scales = tuple(int(s) for s in scales)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(len(self.scales), k, k, k, channels, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(name="bias", shape=(len(self.scales), self.filters), initializer="zeros")

    def interpolated_parameters(self, scale):
        """(kernel, bias) for one scalar scale."""
        weights = ops.cast(scale_weights(scale, self.scales), self.compute_dtype)
        return ops.tensordot(weights, self.kernel, axes=1), ops.tensordot(weights, self.bias, axes=1)

    def call(self, inputs, scale):
        scale = ops.convert_to_tensor(scale, dtype="float32")
        if len(scale.shape) == 0:
            kernel, bias = self.interpolated_parameters(scale)
            return ops.conv(inputs, kernel, strides=1, padding="same") + bias
        n_scales, k = len(self.scales), self.kernel_size
        every_kernel = ops.reshape(ops.moveaxis(self.kernel, 0, -2), (k, k, k, -1, n_scales * self.filters))
        outputs = ops.conv(inputs, every_kernel, strides=1, padding="same")
        outputs = ops.reshape(outputs, (*ops.shape(outputs)[:-1], n_scales, self.filters))
        weights = ops.cast(scale_weights(scale, self.scales), self.compute_dtype)  # [B, n_scales]
        return ops.einsum("bdhwsf,bs->bdhwf", outputs, weights) + ops.matmul(weights, self.bias)[:, None, None, None, :]

    def compute_output_shape(self, inputs_shape, scale_shape=None):
        return (*inputs_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "scales": list(self.scales),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
