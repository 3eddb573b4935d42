"""A reference SavedModel in the SOUP-GAN authors' layout runs through the same whole-volume path as ours."""
import numpy as np
import pytest
import tensorflow as tf

from model.inference.reference_model import INTENSITY_RANGE, ReferenceModel
from pipeline.config import THIN_TO_THICK
from pipeline.errors import InputError
from pipeline.method.interpolation import upsample_volume
from pipeline.volume import Volume
from tests.conftest import phantom


class AuthorsLayout(tf.Module):
    """Their signature: input_images [N,Z,X,Y,1] in 0..10000 and input_indexes [N,5] → output_images.
    This stand-in adds 100·(weight of scale 3) to every voxel, so the test sees both inputs arrive."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 1], tf.float32),
                                  tf.TensorSpec([None, 5], tf.float32)])
    def serve(self, input_images, input_indexes):
        return {"output_images": input_images + 100.0 * input_indexes[:, 1][:, None, None, None, None]}


@pytest.fixture(scope="module")
def reference_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("reference") / "model")
    module = AuthorsLayout()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def test_reference_runs_on_the_tricubic_input_in_its_own_intensity_scale(reference_path):
    volume = Volume(phantom((30, 26, 9)), np.diag([1.0, 1.0, 3.0, 1.0]), "MR")
    reference = ReferenceModel(reference_path)
    tricubic = upsample_volume(volume, 2.5, THIN_TO_THICK)
    result = reference(volume, 2.5, THIN_TO_THICK)  # scale 2.5: weights 0.5 on scales 2 and 3
    np.testing.assert_allclose(result.affine, tricubic.affine)
    window_width = np.percentile(volume.data, 99.5, method="lower") - np.percentile(volume.data, 0.5, method="lower")
    offset = 100.0 * 0.5 / INTENSITY_RANGE * window_width  # back in raw units
    np.testing.assert_allclose(result.data, tricubic.data + offset, atol=1e-3 * np.ptp(tricubic.data))


def test_bad_reference_paths_and_scales_are_refused(reference_path, tmp_path):
    with pytest.raises(InputError, match="not a SavedModel"):
        ReferenceModel(str(tmp_path))
    with pytest.raises(InputError, match="outside the reference model's range"):
        ReferenceModel(reference_path).scale_weights(7.0)
