"""The 3D convolutional discriminator: strided conv stages, global pooling, one real/fake logit."""
from __future__ import annotations

import keras
from keras import layers


def build_discriminator(filters: int = 16, stages: int = 3) -> keras.Sequential:
    """Each stage: conv (stride 1) + conv (stride 2), LeakyReLU 0.2, channels doubling; any patch size."""
    stack = []
    for stage in range(stages):
        width = filters * 2**stage
        stack += [layers.Conv3D(width, 3, padding="same"), layers.LeakyReLU(0.2),
                  layers.Conv3D(width, 3, strides=2, padding="same"), layers.LeakyReLU(0.2)]
    stack += [layers.GlobalAveragePooling3D(), layers.Dense(filters * 2**stages), layers.LeakyReLU(0.2),
              layers.Dense(1)]
    return keras.Sequential(stack, name="discriminator")
