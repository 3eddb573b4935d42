"""Small generators with random weights (the exit too, so they are not the identity) for inference tests."""
import numpy as np

from model.generator import SoupGenerator


def random_generator(variant="residual", filters=4, blocks=1, std=0.05, seed=0, slice_dilations=()) -> SoupGenerator:
    generator = SoupGenerator(variant, filters=filters, blocks=blocks, growth=2, slice_dilations=slice_dilations)
    generator({"image": np.zeros((1, 8, 8, 8, 1), np.float32), "scale": np.float32(2)})
    rng = np.random.default_rng(seed)
    for weight in generator.weights:
        weight.assign(rng.normal(0, std, weight.shape).astype(np.float32))
    return generator
