"""Golden tests of the shipped default weights (as keras-hub pins its presets): their size, reach and inputs, and
their output on a fixed small input at three scales, so a changed file, layer or kernel path shows up here.
The values were computed with these weights; oneDNN and Eigen agree with them to ~1e-6."""
import numpy as np
import pytest

from model.networks.generator import load_generator
from model.weights.model_source import default_generator_path

PARAMETERS = 87_541
RECEPTIVE_FIELD = (14, 14, 14)
VOXELS = [(6, 12, 12), (3, 5, 20), (10, 20, 3)]
GOLDEN = {  # criterion: {scale: (mean of output − input, output at VOXELS)}
    "thin-to-thin": {2.0: (0.001438, [0.93588, 0.61048, 0.72803]),
                     3.5: (-0.005091, [0.92655, 0.61415, 0.67440]),
                     6.0: (-0.008290, [0.89230, 0.63694, 0.69451])},
    "thin-to-thick": {2.0: (0.000376, [0.93604, 0.56127, 0.72459]),
                      3.5: (0.001258, [0.94421, 0.62009, 0.70342]),
                      6.0: (-0.005575, [0.92951, 0.68828, 0.68490])},
}


def fixed_input() -> np.ndarray:
    """A smooth normalised pattern with an edge, 13×24×24, slice axis first."""
    z, y, x = np.meshgrid(np.linspace(0, 1, 13), np.linspace(0, 1, 24), np.linspace(0, 1, 24), indexing="ij")
    return (0.5 + 0.3 * np.sin(7 * y + 3 * z) * np.cos(5 * x) + 0.2 * (x > 0.5)).astype(np.float32)


@pytest.mark.parametrize("criterion", sorted(GOLDEN))
def test_shipped_generator_size_reach_and_inputs(criterion):
    generator = load_generator(default_generator_path(criterion))
    assert generator.count_params() == PARAMETERS
    assert tuple(generator.receptive_field) == RECEPTIVE_FIELD
    assert generator.flow_input and generator.consistent_input == (criterion == "thin-to-thick")


@pytest.mark.parametrize("criterion", sorted(GOLDEN))
def test_shipped_generator_output_on_a_fixed_input(criterion):
    generator = load_generator(default_generator_path(criterion))
    image = fixed_input()
    for scale, (mean_change, values) in GOLDEN[criterion].items():
        output = np.asarray(generator({"image": image[None, ..., None], "scale": np.float32(scale)},
                                      training=False))[0, ..., 0]
        assert float((output - image).mean()) == pytest.approx(mean_change, abs=2e-5), scale
        np.testing.assert_allclose([output[v] for v in VOXELS], values, atol=1e-4, err_msg=f"x{scale}")
