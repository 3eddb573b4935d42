"""Label maps onto the thin grid: only existing labels, same geometry as the images, smoother than nearest."""
import numpy as np
import pytest

from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.degradation import degrade_volume
from pipeline.errors import InputError
from pipeline.method.interpolation import upsample_volume
from pipeline.method.labels import signed_distance, upsample_label_volume
from pipeline.volume import Volume


def spheres(shape=(40, 40, 48)):
    """Two nested spheres and a separate blob, labels 0 (background), 1, 2 and 7, on a 1 mm grid."""
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), -1)
    labels = np.zeros(shape, np.float32)
    radius = np.linalg.norm(grid - (20, 20, 24), axis=-1)
    labels[radius < 15] = 1
    labels[radius < 7] = 2
    labels[np.linalg.norm(grid - (32, 32, 8), axis=-1) < 4] = 7
    return Volume(labels, np.diag([1.0, 1.0, 1.0, 1.0]))


def dice(a, b, label):
    a, b = a == label, b == label
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_signed_distance_is_negative_inside_in_millimetres():
    mask = np.zeros((9, 9, 9), bool)
    mask[2:7, 2:7, 2:7] = True
    distance = signed_distance(mask, (1.0, 1.0, 2.0))
    assert distance[4, 4, 4] < 0 < distance[0, 4, 4]
    assert distance[4, 4, 8] == pytest.approx(4.0)  # two voxels of 2 mm outside the face at k=6


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
def test_labels_follow_the_image_grid_and_beat_nearest_neighbour(criterion):
    truth = spheres()
    thick = Volume(degrade_volume(truth, 4, THIN_TO_THIN).data, degrade_volume(truth, 4, criterion).affine)
    result = upsample_label_volume(thick, 4, criterion)
    image = upsample_volume(thick, 4, criterion)
    assert result.shape == image.shape
    np.testing.assert_allclose(result.affine, image.affine)
    assert set(np.unique(result.data)) <= {0.0, 1.0, 2.0, 7.0}
    if criterion == THIN_TO_THIN:  # thick slice k is thin slice 4k: compare with the truth
        target = truth.data[..., : result.shape[2]]
        nearest = np.repeat(thick.data, 4, axis=2)[..., : result.shape[2]]
        for label in (1, 2):
            assert dice(result.data, target, label) > dice(nearest, target, label)
        assert dice(result.data, target, 1) > 0.95


def test_non_integer_values_are_refused():
    volume = Volume(np.random.default_rng(0).random((8, 8, 4), dtype=np.float32), np.eye(4))
    with pytest.raises(InputError, match="whole numbers"):
        upsample_label_volume(volume, 2, THIN_TO_THIN)


def test_a_single_label_stays_that_label():
    volume = Volume(np.full((6, 6, 4), 3, np.float32), np.diag([1, 1, 3.0, 1]))
    result = upsample_label_volume(volume, 3, THIN_TO_THICK)
    assert result.shape == (6, 6, 12) and np.all(result.data == 3)
