"""soupgan's domain core, shared by Beam, training and serving: volumes and their IO, degradation, cubic
interpolation, normalisation, patches, the record schema, tf.data input and metrics.

Nothing here imports Beam or a model. TensorFlow is imported only by `records`, `dataset` and
`graph_ops`, so NumPy-only users (Beam's volume steps) do not pay for it until they need it.
"""
from pipeline.config import CRITERIA, PATCH_SIZE, SCALES
from pipeline.errors import InputError, SoupganError
from pipeline.volume import Volume

__all__ = ["CRITERIA", "PATCH_SIZE", "SCALES", "InputError", "SoupganError", "Volume"]
