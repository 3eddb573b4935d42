"""Small generators with random weights (the exit too, so they are not the identity) for inference tests."""
import numpy as np

from model.networks.generator import SoupGenerator


def random_generator(variant="residual", filters=4, blocks=1, std=0.05, seed=0, slice_dilations=()) -> SoupGenerator:
    generator = SoupGenerator(variant, filters=filters, blocks=blocks, growth=2, slice_dilations=slice_dilations)
    generator({"image": np.zeros((1, 8, 8, 8, 1), np.float32), "scale": np.float32(2)})
    rng = np.random.default_rng(seed)
    for weight in generator.weights:
        weight.assign(rng.normal(0, std, weight.shape).astype(np.float32))
    return generator


def one_pass_over_edge_padded(generator: SoupGenerator, image: np.ndarray, scale: float) -> np.ndarray:
    """The generator over the whole `image` padded by its receptive field with the edge voxels, cropped back:
    what tiled inference must equal."""
    radius = generator.receptive_field
    padded = np.pad(image, [(r, r) for r in radius], mode="edge")
    output = generator({"image": padded[None, ..., None], "scale": np.float32(scale)}).numpy()[0, ..., 0]
    return output[tuple(slice(r, r + n) for r, n in zip(radius, image.shape))]
