"""`average_generators`: the weight-space mean of generators of one architecture (how the shipped default is made)."""
import numpy as np
import pytest

from model.networks.generator import average_generators, load_generator
from pipeline.errors import InputError
from tests.generators import random_generator


def test_every_weight_is_the_mean_and_the_result_saves_and_loads(tmp_path):
    first, second = random_generator(seed=0), random_generator(seed=1)
    average = average_generators([first, second])
    assert average is not first and average.count_params() == first.count_params()
    for mean, a, b in zip(average.get_weights(), first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(mean, (a + b) / 2, rtol=0, atol=1e-7)
    assert np.abs(first.get_weights()[0] - second.get_weights()[0]).max() > 0.01  # the mean is not a copy
    path = str(tmp_path / "average.keras")
    average.save(path)
    x = np.random.default_rng(2).random((1, 12, 10, 10, 1), np.float32)
    np.testing.assert_array_equal(load_generator(path)({"image": x, "scale": np.float32(3.5)}),
                                  average({"image": x, "scale": np.float32(3.5)}))


def test_the_average_of_one_generator_computes_the_same_function():
    generator = random_generator(seed=3)
    x = np.random.default_rng(4).random((1, 12, 10, 10, 1), np.float32)
    np.testing.assert_allclose(average_generators([generator])({"image": x, "scale": np.float32(2)}),
                               generator({"image": x, "scale": np.float32(2)}), atol=1e-6)


def test_different_architectures_are_refused():
    with pytest.raises(InputError, match="one architecture"):
        average_generators([random_generator(filters=4), random_generator(filters=8)])
    consistent = random_generator(filters=4)
    consistent.consistent_input = True  # it expects another input: its weights mean something else
    with pytest.raises(InputError, match="one architecture"):
        average_generators([random_generator(filters=4), consistent])
    with pytest.raises(InputError, match="no generators"):
        average_generators([])
