"""In-graph edge padding (what the exported graph feeds the generator) against NumPy's "edge" mode."""
import numpy as np
import pytest
import tensorflow as tf

from pipeline.graph.graph_ops import pad_edges_tf


@pytest.mark.parametrize("shape, pads", [((5, 6, 7), [(3, 3), (0, 2), (4, 0)]),
                                         ((1, 2, 3), [(14, 14), (14, 14), (14, 14)])],  # pads longer than the axis
                         ids=["mixed", "thin-axes"])
def test_edge_padding_matches_numpy(shape, pads):
    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    # traced with unknown sizes, as in the SavedModel
    padded = tf.function(lambda v: pad_edges_tf(v, pads), input_signature=[tf.TensorSpec([None] * 3, tf.float32)])
    np.testing.assert_array_equal(padded(tf.constant(volume)).numpy(), np.pad(volume, pads, mode="edge"))
