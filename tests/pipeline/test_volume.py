import numpy as np
import pytest

from pipeline.errors import NonFiniteVoxelsError, VolumeShapeError
from pipeline.volume import Volume, content_id, hashed_id


def test_spacing_and_slice_axis_follow_the_affine():
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    affine[:3, :3] = affine[:3, :3] @ np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])  # permuted axes
    volume = Volume(np.zeros((4, 5, 6)), affine)
    np.testing.assert_allclose(volume.spacing, [0.9, 0.9, 5.0])
    assert volume.slice_axis() == 2
    assert Volume(np.zeros((4, 5, 6)), np.diag([3.0, 1, 1, 1])).slice_axis() == 0
    assert Volume(np.zeros((4, 5, 6)), np.eye(4)).slice_axis() == 2  # isotropic: the last axis
    assert volume.slice_axis(override=1) == 1


@pytest.mark.parametrize("shape", [(10, 10), (4, 4, 4, 3), (8, 8, 1)])
def test_non_volumes_are_refused(shape):
    with pytest.raises(VolumeShapeError, match="expected a 3D volume"):
        Volume(np.zeros(shape), np.eye(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_refused(bad):
    data = np.ones((4, 4, 4), np.float32)
    data[1, 2, 3] = bad
    with pytest.raises(NonFiniteVoxelsError, match="1 of 64 voxels"):
        Volume(data, np.eye(4))


def test_singular_affine_is_refused():
    with pytest.raises(VolumeShapeError, match="invertible"):
        Volume(np.zeros((4, 4, 4)), np.diag([1.0, 0.0, 1.0, 1.0]))


def test_ids_are_hashes_stable_for_copies_and_kept_by_with_data():
    data = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    first, copy = Volume(data, np.eye(4)), Volume(data.copy(), np.eye(4))
    assert first.volume_id == copy.volume_id == content_id(data, np.eye(4))
    assert len(first.volume_id) == 16 and int(first.volume_id, 16) >= 0
    assert Volume(data + 1, np.eye(4)).volume_id != first.volume_id
    assert first.with_data(data[:, :, :3]).volume_id == first.volume_id
    assert hashed_id("Doe^Jane") != hashed_id("Doe^John")
    assert hashed_id("Doe", "Jane") != hashed_id("DoeJane")  # parts are separated, not concatenated
