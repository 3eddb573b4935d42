"""soupgan's domain core, shared by Beam, training and serving: volumes and their IO, degradation, cubic
interpolation, normalisation, patches, the record schema, tf.data input and metrics.

Nothing here imports Beam or a model. TensorFlow is imported by `records` (and so `pairs`), `dataset`,
`graph_ops` and `graph_flow` only; reading, degrading, interpolating and patching volumes do not need it.
"""
from pipeline.config import CRITERIA, PATCH_SIZE, SCALES
from pipeline.errors import InputError, SoupganError
from pipeline.volume import Volume

__all__ = ["CRITERIA", "PATCH_SIZE", "SCALES", "InputError", "SoupganError", "Volume"]
