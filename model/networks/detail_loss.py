"""An offline perceptual term for the GAN stage: the tri-planar Laplacian pyramid distance. No weights to fetch.

For each of the three planes (axial, coronal, sagittal) and each pyramid level (the volume average-pooled by
2^k), the plane's 2D Laplacian (second differences along its two axes) of the prediction is compared with the
truth's, mean absolute difference; levels and planes averaged. It asks each generated slice for the truth's
edges and fine texture in every view: what an MSE-trained generator smooths away, and what
`pipeline.metrics.slice_detail` measures (sharpness, Laplacian correlation).
"""
from __future__ import annotations

import keras
from keras import ops

PLANES = ((2, 3), (1, 3), (1, 2))  # axial (H, W), coronal (D, W), sagittal (D, H) of [B, D, H, W, 1]


def _along(volume, axis: int, start: int, stop: int):
    index = [slice(None)] * 5
    index[axis] = slice(start, stop)
    return volume[tuple(index)]


def second_difference(volume, axis: int):
    """x[i+1] − 2·x[i] + x[i−1] along `axis` (1..3) of [B, D, H, W, C], on every voxel with both neighbours."""
    length = volume.shape[axis]
    return _along(volume, axis, 2, length) - 2.0 * _along(volume, axis, 1, length - 1) + _along(volume, axis, 0, length - 2)


def interior(volume, keep_axis: int):
    """Drop the first and last voxel along every spatial axis but `keep_axis` (already cut by its difference)."""
    for axis in (1, 2, 3):
        if axis != keep_axis:
            volume = _along(volume, axis, 1, volume.shape[axis] - 1)
    return volume


def plane_laplacians(volume) -> list:
    """The 2D Laplacian of every slice in each plane, on the voxels where all three exist."""
    differences = {axis: interior(second_difference(volume, axis), axis) for axis in (1, 2, 3)}
    return [differences[a] + differences[b] for a, b in PLANES]


@keras.saving.register_keras_serializable(package="soupgan")
class TriPlanarLaplacianLoss(keras.layers.Layer):
    """`loss(prediction, target)` → scalar, on normalised intensities [B, D, H, W, 1]; `levels` pyramid levels
    (each needs at least 3 voxels per side after pooling)."""

    def __init__(self, levels: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.levels = int(levels)

    def plane_losses(self, prediction, target):
        """[axial, coronal, sagittal] terms, each averaged over the levels."""
        smallest = min(prediction.shape[1:4]) // 2 ** (self.levels - 1)
        if smallest < 3:
            raise ValueError(f"{self.levels} Laplacian pyramid levels need volumes of at least "
                             f"{3 * 2 ** (self.levels - 1)} voxels per side (got {tuple(prediction.shape[1:4])})")
        totals = [0.0, 0.0, 0.0]
        for level in range(self.levels):
            if level:
                prediction = ops.average_pool(prediction, 2, strides=2)
                target = ops.average_pool(target, 2, strides=2)
            for plane, (mine, truth) in enumerate(zip(plane_laplacians(prediction), plane_laplacians(target))):
                totals[plane] = totals[plane] + ops.mean(ops.abs(mine - ops.stop_gradient(truth)))
        return [total / self.levels for total in totals]

    def call(self, prediction, target):
        return ops.mean(ops.stack(self.plane_losses(prediction, target)))

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}
