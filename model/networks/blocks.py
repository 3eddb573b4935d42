"""Generator backbones' building blocks: the plain residual block and ESRGAN's RRDB, in 3D."""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

NEGATIVE_SLOPE = 0.2


def conv3d(filters: int, name: str | None = None, dilation: tuple[int, int, int] = (1, 1, 1),
           initializer: str = "he_normal") -> layers.Conv3D:
    """The 3×3×3 'same' convolution every block uses (dilated along an axis for reach at the same cost)."""
    return layers.Conv3D(filters, 3, padding="same", dilation_rate=dilation, kernel_initializer=initializer,
                         name=name)


@keras.saving.register_keras_serializable(package="soupgan")
class ResidualBlock3D(layers.Layer):
    """x + conv(relu(conv(x))): the EDSR-style block (no batch norm) of the paper's residual generator.

    `dilation` spaces the taps of both convolutions (e.g. (4, 1, 1): reach along the slice axis only);
    `identity_start` zeroes the second convolution, so a new block passes its input through unchanged and can
    be added to a trained network without changing what it computes.
    """

    def __init__(self, filters: int, dilation: Sequence[int] = (1, 1, 1), identity_start: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.dilation = tuple(int(d) for d in dilation)
        self.identity_start = bool(identity_start)
        self.conv_a = conv3d(self.filters, "conv_a", self.dilation)
        self.conv_b = conv3d(self.filters, "conv_b", self.dilation, "zeros" if self.identity_start else "he_normal")

    def build(self, input_shape):
        self.conv_a.build(input_shape)
        self.conv_b.build((*input_shape[:-1], self.filters))

    def call(self, inputs):
        return inputs + self.conv_b(keras.activations.relu(self.conv_a(inputs)))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "dilation": list(self.dilation),
                "identity_start": self.identity_start}


@keras.saving.register_keras_serializable(package="soupgan")
class ResidualDenseBlock3D(layers.Layer):
    """ESRGAN's residual dense block: 5 densely connected convs, output scaled by `residual_scale`."""

    def __init__(self, filters: int, growth: int, residual_scale: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.growth = int(growth)
        self.residual_scale = float(residual_scale)
        self.convs = [conv3d(self.growth, f"conv_{i}") for i in range(4)] + [conv3d(self.filters, "conv_4")]

    def build(self, input_shape):
        channels = self.filters
        for conv in self.convs:
            conv.build((*input_shape[:-1], channels))
            channels += self.growth

    def call(self, inputs):
        features = [inputs]
        for conv in self.convs[:-1]:
            features.append(keras.activations.leaky_relu(conv(keras.ops.concatenate(features, -1)), NEGATIVE_SLOPE))
        return inputs + self.residual_scale * self.convs[-1](keras.ops.concatenate(features, -1))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "growth": self.growth,
                "residual_scale": self.residual_scale}


@keras.saving.register_keras_serializable(package="soupgan")
class RRDB3D(layers.Layer):
    """Residual-in-residual dense block: three dense blocks inside one scaled skip connection."""

    def __init__(self, filters: int, growth: int, residual_scale: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.growth = int(growth)
        self.residual_scale = float(residual_scale)
        self.dense_blocks = [ResidualDenseBlock3D(self.filters, self.growth, self.residual_scale, name=f"rdb_{i}")
                             for i in range(3)]

    def build(self, input_shape):
        for block in self.dense_blocks:
            block.build(input_shape)

    def call(self, inputs):
        features = inputs
        for block in self.dense_blocks:
            features = block(features)
        return inputs + self.residual_scale * features

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "growth": self.growth,
                "residual_scale": self.residual_scale}
