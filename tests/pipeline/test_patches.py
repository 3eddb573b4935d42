import itertools

import numpy as np
import pytest
from scipy.signal.windows import gaussian

from pipeline.errors import VolumeShapeError
from pipeline.method.normalization import IntensityWindow, robust_window
from pipeline.data.patches import extract_patches, foreground_mask, patch_starts
from tests.conftest import phantom


def patch_grid(shape, size=32, stride=None):
    """(P, 3) corners of the shards job's patch grid over a 3D volume (`patch_starts` on every axis)."""
    axes = [patch_starts(int(length), size, size if stride is None else stride) for length in shape]
    return np.array(list(itertools.product(*axes)), dtype=np.int64).reshape(-1, 3)


def reassemble(patches, corners, shape, weights=None):
    """The patches put back into a volume, overlaps averaged in float64 (with a per-voxel weight map)."""
    size = patches.shape[1]
    weights = np.ones((size,) * 3) if weights is None else np.asarray(weights, dtype=np.float64)
    total, norm = np.zeros(shape), np.zeros(shape)
    for patch, corner in zip(patches, corners):
        region = tuple(slice(c, c + size) for c in corner)
        total[region] += patch * weights
        norm[region] += weights
    assert (norm > 0).all(), "the patches do not cover the whole volume"
    return (total / norm).astype(patches.dtype)


def test_starts_cover_the_axis_with_a_flush_last_patch():
    assert patch_starts(96, 32, 32) == [0, 32, 64]
    assert patch_starts(100, 32, 32) == [0, 32, 64, 68]
    assert patch_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert patch_starts(32, 32, 32) == [0]
    with pytest.raises(VolumeShapeError, match="20 voxels along an axis, smaller than the 32-voxel patch"):
        patch_starts(20, 32, 32)


def test_grid_counts():
    assert patch_grid((64, 96, 70)).shape == (2 * 3 * 3, 3)
    corners = patch_grid((64, 64, 64), stride=16)
    assert corners.shape == (27, 3) and corners.max() == 32


@pytest.mark.parametrize("stride", [32, 16, 11])
def test_the_patch_grid_covers_every_voxel_and_patches_are_exact_copies(stride):
    volume = phantom((70, 66, 45))
    corners = patch_grid(volume.shape, 32, stride)
    patches = extract_patches(volume, corners)
    np.testing.assert_array_equal(patches[1], volume[tuple(slice(c, c + 32) for c in corners[1])])
    np.testing.assert_array_equal(reassemble(patches, corners, volume.shape), volume)
    window = gaussian(32, 8)
    weights = window[:, None, None] * window[None, :, None] * window[None, None, :]
    np.testing.assert_array_equal(reassemble(patches, corners, volume.shape, weights), volume)


def test_foreground_filter_drops_background_only_patches():
    volume = phantom((96, 96, 96))
    window = robust_window(volume)
    corners = patch_grid(volume.shape)
    keep = foreground_mask(extract_patches(volume, corners), window)
    corner_patch = [tuple(c) for c in corners].index((0, 0, 0))
    centre_patch = [tuple(c) for c in corners].index((32, 32, 32))
    assert not keep[corner_patch] and keep[centre_patch]
    assert 0 < keep.sum() < len(keep)
    # a patch is kept from 5% tissue upwards
    patch = np.zeros((1, 32, 32, 32), np.float32)
    patch[0, :2] = 500  # 2/32 = 6.25% of the voxels
    assert foreground_mask(patch, IntensityWindow(0, 500))[0]
    patch[0, 1] = 0  # 3.1%
    assert not foreground_mask(patch, IntensityWindow(0, 500))[0]
