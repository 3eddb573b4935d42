"""The generator over 3D tiles inside a serving graph, so one request's activations stay those of one tile
whatever the volume (a whole-volume pass of the default generator needs ~100 bytes per output voxel).

Each axis is cut into equal cores (`model.inference.sliding_window.equal_cores`, as the in-process tiles), the input is
padded with its edge voxels by the receptive field (and to a whole number of cores), and each tile reads
its core plus the receptive field: every output voxel sees exactly what a whole-volume pass over the
edge-padded input gives it, as `model.inference.super_resolve`'s tiles do in process."""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from model.networks.generator import SoupGenerator
from model.inference.sliding_window import equal_cores
from pipeline.graph.graph_ops import pad_edges_tf


def generate_in_tiles(generator: SoupGenerator, image: tf.Tensor, scale: float, core: Sequence[int]) -> tf.Tensor:
    """The generator's output on a normalised thin-grid input [D, H, W], one tile at a time."""
    radius = generator.receptive_field
    shape = tf.shape(image)
    counts, sizes = zip(*(equal_cores(shape[axis], core[axis]) for axis in range(3)))
    padded = pad_edges_tf(image, [(r, count * size - length + r)
                                  for r, count, size, length in zip(radius, counts, sizes, tf.unstack(shape))])
    scale = tf.constant(scale, tf.float32)

    def tile(index):
        z, y, x = index // (counts[1] * counts[2]), index // counts[2] % counts[1], index % counts[2]
        block = padded[z * sizes[0]:(z + 1) * sizes[0] + 2 * radius[0],
                       y * sizes[1]:(y + 1) * sizes[1] + 2 * radius[1],
                       x * sizes[2]:(x + 1) * sizes[2] + 2 * radius[2]]
        output = generator({"image": block[None, ..., None], "scale": scale}, training=False)[0, ..., 0]
        return output[radius[0]:radius[0] + sizes[0], radius[1]:radius[1] + sizes[1], radius[2]:radius[2] + sizes[2]]

    tiles = tf.map_fn(tile, tf.range(counts[0] * counts[1] * counts[2]), parallel_iterations=1,
                      fn_output_signature=tf.TensorSpec([None, None, None], tf.float32))
    grid = tf.reshape(tiles, [counts[0], counts[1], counts[2], sizes[0], sizes[1], sizes[2]])
    whole = tf.reshape(tf.transpose(grid, [0, 3, 1, 4, 2, 5]),
                       [counts[0] * sizes[0], counts[1] * sizes[1], counts[2] * sizes[2]])
    return whole[:shape[0], :shape[1], :shape[2]]
