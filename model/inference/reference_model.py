"""A reference SavedModel in the layout of the SOUP-GAN authors' released model, run over a whole volume the
way soupgan's own generator is (same window, same lazy cubic upsampling, same sliding window).

Its signature takes `input_images` [N, Z, X, Y, 1] (cubic-pre-upsampled, slice axis first, intensities
scaled to 0..10000) and `input_indexes` [N, 5] (the weights of scales 2..6), and returns `output_images`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from model.inference.sliding_window import SlidingWindow
from model.inference.super_resolve import tiled_over_volume
from pipeline.config import SCALES
from pipeline.errors import InputError
from pipeline.volume import Volume

INTENSITY_RANGE = 10000.0  # the authors' model takes the normalised volume scaled to 0..10000
HALO = 16  # its receptive radius is not published: 16 changes its output by < 3e-5 of the range (BENCHMARKS.md)
TILE = (64, 128, 128)


class ReferenceModel:
    """`model(volume, scale, criterion)` → thin-slice Volume, like `model.inference.super_resolve.super_resolve`."""

    def __init__(self, path: str):
        try:
            self.signature = tf.saved_model.load(path).signatures["serving_default"]
        except (OSError, KeyError, ValueError) as err:
            raise InputError(f"{path}: not a SavedModel with a serving_default signature ({err})") from None

    def scale_weights(self, scale: float) -> np.ndarray:
        """The authors' input_indexes: hat weights over scales 2..6 (one-hot at an integer scale)."""
        if not SCALES[0] <= scale <= SCALES[-1]:
            raise InputError(f"scale {scale:g} is outside the reference model's range [{SCALES[0]}, {SCALES[-1]}]")
        return np.maximum(0.0, 1.0 - np.abs(np.asarray(SCALES, np.float32) - scale))[None, :]

    def __call__(self, volume: Volume, scale: float, criterion: str, axis: int | None = None) -> Volume:
        weights = self.scale_weights(scale)

        def predict(batch: np.ndarray) -> np.ndarray:
            outputs = self.signature(input_images=tf.constant(batch[..., None] * INTENSITY_RANGE),
                                     input_indexes=tf.constant(np.repeat(weights, len(batch), axis=0)))
            return outputs["output_images"].numpy()[..., 0] / INTENSITY_RANGE

        return tiled_over_volume(volume, predict, scale, criterion, axis,
                                 lambda shape: SlidingWindow(shape, TILE, HALO, overlap=0.0))
