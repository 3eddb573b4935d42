"""Whole-volume inference with a generator: overlapping slabs along the slice axis, so memory stays
bounded and the result equals one pass over the whole volume (each slab carries a halo as wide as
the network's receptive radius, then keeps only its own slices)."""
from __future__ import annotations

import numpy as np

from model.generator import SoupGenerator


def enhance(generator: SoupGenerator, image: np.ndarray, scale: float, slab: int = 32) -> np.ndarray:
    """Run `generator` on a normalised, cubic-upsampled volume [D, H, W] (slice axis first) at `scale`."""
    halo = generator.receptive_radius
    depth = image.shape[0]
    output = np.empty(image.shape, np.float32)
    for start in range(0, depth, slab):
        stop = min(start + slab, depth)
        low, high = max(start - halo, 0), min(stop + halo, depth)
        piece = np.asarray(image[low:high], np.float32)[None, ..., None]
        result = generator({"image": piece, "scale": np.float32(scale)}, training=False)
        output[start:stop] = np.asarray(result)[0, start - low: stop - low, ..., 0]
    return output
