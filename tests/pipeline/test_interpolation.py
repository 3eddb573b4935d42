import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from pipeline.method.degradation import degrade_volume
from pipeline.errors import VolumeShapeError
from pipeline.method.geometry import upsampled_length, upsampled_positions
from pipeline.graph.graph_ops import interpolation_matrix_tf, upsample_tf
from pipeline.method.interpolation import upsample, upsample_volume
from pipeline.io.nifti_io import read_nifti

CRITERIA = ["thin-to-thin", "thin-to-thick", "gaussian"]
SCALES = [2, 3, 4, 5, 6, 2.5]


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("scale", SCALES)
def test_numpy_path_is_scipys_cubic_spline(criterion, scale):
    """The definition: scipy.ndimage's order-3 spline, mode 'mirror', at the geometry's positions."""
    lr = np.random.default_rng(7).normal(size=(6, 5, 9)).astype(np.float32)
    out = upsample(lr, scale, criterion, axis=2)
    positions = upsampled_positions(9, scale, criterion)
    grid = np.meshgrid(np.arange(6), np.arange(5), positions, indexing="ij")
    reference = ndimage.map_coordinates(lr.astype(np.float64), grid, order=3, mode="mirror")
    np.testing.assert_allclose(out, reference, atol=2e-6)


def test_result_does_not_depend_on_blas_threads():
    """Shards must be byte-identical across runners, whose workers set different thread counts."""
    code = (
        "import sys, hashlib, numpy as np; sys.path.insert(0, {root!r}); from pipeline.method.interpolation import upsample; "
        "x = np.random.default_rng(0).normal(size=(64, 60, 20)).astype(np.float32); "
        "print(hashlib.sha256(upsample(x, 3, 'thin-to-thick', 2).tobytes()).hexdigest())"
    ).format(root=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    digests = {
        subprocess.run([sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t),
                       capture_output=True, text=True, check=True).stdout
        for t in ("1", "2")
    }
    assert len(digests) == 1


@pytest.mark.parametrize("scale", [2, 3, 4, 5, 6])
def test_thin_to_thin_keeps_original_slices_in_place(scale, phantom_volume):
    low = degrade_volume(phantom_volume, scale, "thin-to-thin")
    up = upsample_volume(low, scale, "thin-to-thin")
    assert up.shape[2] == (low.shape[2] - 1) * scale + 1
    np.testing.assert_allclose(up.data[:, :, ::scale], low.data, atol=1e-3)  # float32 BLAS rounding only
    for k in range(low.shape[2]):  # and in world space the LR slice k is the upsampled slice k*s
        np.testing.assert_allclose(up.affine @ [3, 4, k * scale, 1], low.affine @ [3, 4, k, 1], atol=1e-9)
    # the upsampled grid is the original HR grid
    np.testing.assert_allclose(up.affine, phantom_volume.affine, atol=1e-9)


@pytest.mark.parametrize("scale", [2, 3, 4, 5, 6])
def test_thin_to_thick_slices_tile_each_slab(scale, phantom_volume):
    low = degrade_volume(phantom_volume, scale, "thin-to-thick")
    up = upsample_volume(low, scale, "thin-to-thick")
    assert up.shape[2] == low.shape[2] * scale
    np.testing.assert_allclose(up.affine, phantom_volume.affine, atol=1e-9)
    for k in range(low.shape[2]):
        thin = [up.affine @ [0, 0, j, 1] for j in range(k * scale, (k + 1) * scale)]
        np.testing.assert_allclose(np.mean(thin, axis=0), low.affine @ [0, 0, k, 1], atol=1e-9)


def test_lengths_and_minimum_slices():
    assert upsampled_length(10, 4, "thin-to-thin") == 37
    assert upsampled_length(10, 4, "thin-to-thick") == 40
    assert upsampled_length(10, 2.5, "thin-to-thin") == 23
    with pytest.raises(VolumeShapeError, match="at least 2 slices"):
        upsample(np.zeros((3, 3, 1), np.float32), 2, "thin-to-thin", 2)


@pytest.mark.parametrize("n", [2, 3, 4, 17])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_in_graph_matrix_equals_the_numpy_operator(n, criterion):
    """Column k of the TF matrix is the NumPy path's interpolation of the k-th unit impulse."""
    impulses = np.eye(n, dtype=np.float32)[:, :, None]
    for scale in SCALES:
        numpy_operator = upsample(impulses, scale, criterion, axis=0)[:, :, 0]
        np.testing.assert_allclose(interpolation_matrix_tf(n, scale, criterion).numpy(), numpy_operator, atol=1e-7)


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("scale", [2, 4, 6, 2.5])
def test_tf_and_numpy_paths_agree_on_a_real_scan(anatomical_path, criterion, scale):
    """Parity contract: within 1e-4 of the data range, with dynamic shapes as in a SavedModel."""
    lr = read_nifti(anatomical_path).data
    graph = tf.function(
        lambda v: upsample_tf(v, scale, criterion, axis=2),
        input_signature=[tf.TensorSpec([None, None, None], tf.float32)],
        autograph=False,
    )
    difference = np.abs(graph(lr).numpy() - upsample(lr, scale, criterion, axis=2)).max()
    assert difference <= 1e-4 * np.ptp(lr)


def test_tf_path_on_a_batched_5d_tensor():
    lr = np.random.default_rng(2).normal(size=(2, 7, 6, 5, 1)).astype(np.float32)
    out = upsample_tf(lr, 3, "thin-to-thick", axis=1).numpy()
    assert out.shape == (2, 21, 6, 5, 1)
    np.testing.assert_allclose(out[1, ..., 0], upsample(lr[1, ..., 0], 3, "thin-to-thick", axis=0), atol=1e-5)
