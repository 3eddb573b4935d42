"""Label maps (segmentations) onto the thin-slice grid: per-label signed distance fields, interpolated with the
same cubic spline as the images, then the label whose surface each thin voxel lies deepest inside.

Interpolating distances rather than label values keeps every label a label (no invented in-between values)
and moves boundaries smoothly between thick slices, where nearest-neighbour would make staircases.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.errors import InputError
from pipeline.method.geometry import upsampled_affine, upsampled_length
from pipeline.method.interpolation import upsample
from pipeline.volume import Volume

MAX_LABELS = 1000


def signed_distance(mask: np.ndarray, spacing) -> np.ndarray:
    """Distance in mm to the mask's surface: negative inside, positive outside (float32)."""
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    return (outside - inside).astype(np.float32)


def upsample_labels(labels: np.ndarray, spacing, scale: float, criterion: str, axis: int) -> np.ndarray:
    """The label map on the upsampled grid; every output value is one of the input's labels."""
    values = np.unique(labels)
    if not np.array_equal(values, np.round(values)):
        raise InputError("a label map must hold whole numbers (use it without --labels for an image)")
    if values.size > MAX_LABELS:
        raise InputError(f"{values.size} distinct labels: more than {MAX_LABELS}; is this an image, not a label map?")
    if values.size == 1:
        shape = list(labels.shape)
        shape[axis] = upsampled_length(shape[axis], scale, criterion)
        return np.full(shape, values[0], np.float32)
    best_distance, best_label = None, None
    for value in values:
        distance = upsample(signed_distance(labels == value, spacing), scale, criterion, axis)
        if best_distance is None:
            best_distance, best_label = distance, np.full(distance.shape, value, np.float32)
        else:
            deeper = distance < best_distance
            best_distance[deeper] = distance[deeper]
            best_label[deeper] = value
    return best_label


def upsample_label_volume(volume: Volume, scale: float, criterion: str, axis: int | None = None) -> Volume:
    """A label volume upsampled along its slice axis, with the same affine the images get."""
    axis = volume.slice_axis(axis)
    labels = upsample_labels(volume.data, volume.spacing, scale, criterion, axis)
    return volume.with_data(labels, upsampled_affine(volume.affine, axis, scale, criterion))
