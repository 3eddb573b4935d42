"""The multi-scale SR generator: scale-specific entrance/exit around a shared residual (or RRDB) trunk.

It learns the residual between the pre-upsampled input (cubic spline or flow-guided) and the thin-slice target, on
normalised intensities ([p0.5, p99.5] of the thick volume → [0, 1]); `pipeline.graph.graph_ops` holds the
normalisation that training input and serving graphs wrap around it. A generator with `consistent_input`
was trained on thin-to-thick inputs whose slab means were restored after the spline
(`pipeline.method.consistency`); one with `flow_input` on the flow-guided interpolation
(`pipeline.method.slice_flow`) instead of the spline. Every path that feeds it builds its input that way
(`pipeline.method.slice_flow.input_upsample`).
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import keras
import numpy as np
from keras import ops

from model.networks.blocks import RRDB3D, ResidualBlock3D
from model.networks.scale_conv import ScaleInterpolatedConv3D
from pipeline.config import SCALES
from pipeline.errors import InputError

VARIANTS = ("residual", "rrdb")
ARCHITECTURE_KEYS = ("variant", "filters", "blocks", "growth", "scales", "slice_dilations", "consistent_input",
                      "flow_input")


@keras.saving.register_keras_serializable(package="soupgan")
class SoupGenerator(keras.Model):
    """Called on {"image": [B, D, H, W, 1], "scale": scalar or [B]}; returns the SR image, same shape.

    Fully convolutional (any D, H, W). A fractional scale interpolates the neighbouring integer scales'
    entrance and exit parameters (one forward pass); a per-sample scale vector lets a training batch
    mix scales.
    """

    def __init__(self, variant: str = "residual", filters: int = 16, blocks: int = 4, growth: int = 8,
                 scales: Sequence[int] = SCALES, slice_dilations: Sequence[int] = (), consistent_input: bool = False,
                 flow_input: bool = False, **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"unknown generator variant {variant!r}; choose from {', '.join(VARIANTS)}")
        self.variant = variant
        self.filters = int(filters)
        self.blocks = int(blocks)
        self.growth = int(growth)
        self.scales = tuple(int(s) for s in scales)
        self.slice_dilations = tuple(int(d) for d in slice_dilations)
        self.consistent_input = bool(consistent_input)  # its input: the spline with slab means restored
        self.flow_input = bool(flow_input)  # its input: the flow-guided interpolation, not the spline
        if any(d < 1 for d in self.slice_dilations):
            raise ValueError(f"slice dilations must be >= 1, got {list(self.slice_dilations)}")
        self.entrance = ScaleInterpolatedConv3D(self.filters, scales=self.scales, name="entrance")
        if variant == "residual":
            self.trunk = [ResidualBlock3D(self.filters, name=f"block_{i}") for i in range(self.blocks)]
        else:
            self.trunk = [RRDB3D(self.filters, self.growth, name=f"rrdb_{i}") for i in range(self.blocks)]
        # Reach along the slice axis: residual blocks dilated along it only, after the trunk. They start as the
        # identity, so `grow_generator` can add them to a trained generator without changing its output.
        self.reach = [ResidualBlock3D(self.filters, dilation=(d, 1, 1), identity_start=True, name=f"reach_{i}")
                      for i, d in enumerate(self.slice_dilations)]
        # A zero exit makes the untrained generator the identity, i.e. exactly cubic interpolation.
        self.exit = ScaleInterpolatedConv3D(1, scales=self.scales, kernel_initializer="zeros", name="exit")

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        """Voxels of context each output voxel depends on, per side, along (slice, row, column): one per 3×3×3
        convolution, `d` along the slice axis per convolution dilated by `d` there."""
        convs_per_block = 2 if self.variant == "residual" else 15
        in_plane = 2 + convs_per_block * self.blocks + 2 * len(self.slice_dilations)
        return in_plane + 2 * sum(d - 1 for d in self.slice_dilations), in_plane, in_plane

    @property
    def receptive_radius(self) -> int:
        """The largest reach of `receptive_field`: the halo that makes any tiling equal one whole pass."""
        return max(self.receptive_field)

    def build(self, input_shape):
        image_shape = tuple(input_shape["image"]) if isinstance(input_shape, dict) else (None, None, None, None, 1)
        features_shape = (*image_shape[:-1], self.filters)
        for layer, shape in [(self.entrance, image_shape),
                             *[(block, features_shape) for block in [*self.trunk, *self.reach]],
                             (self.exit, features_shape)]:
            if not layer.built:
                layer.build(shape)
        self.built = True

    def call(self, inputs):
        image, scale = inputs["image"], inputs["scale"]
        features = keras.activations.leaky_relu(self.entrance(image, scale), 0.2)
        trunk = features
        for block in [*self.trunk, *self.reach]:
            trunk = block(trunk)
        # the residual is added in the input's precision (float32 under a mixed policy too)
        return image + ops.cast(self.exit(trunk + features, scale), image.dtype)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "filters": self.filters, "blocks": self.blocks,
                "growth": self.growth, "scales": list(self.scales), "slice_dilations": list(self.slice_dilations),
                "consistent_input": self.consistent_input, "flow_input": self.flow_input}


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to `name` inside the block (layers made there take it), restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def clone_generator(generator: SoupGenerator, dtype: str = "float32") -> SoupGenerator:
    """A new generator with the same architecture and weights, its variables and compute in `dtype`."""
    with dtype_policy(dtype):  # sub-layers take the global policy when they are made
        copy = SoupGenerator.from_config({**generator.get_config(), "dtype": dtype})
    copy.build({"image": (None, None, None, None, 1), "scale": (None,)})  # both inputs: export traces them
    copy.set_weights(generator.get_weights())
    return copy


def float32_copy(generator: SoupGenerator) -> SoupGenerator:
    """The generator with float32 variables and compute (itself when it already is): what is saved and served,
    whatever precision policy it was trained under."""
    return generator if generator.compute_dtype == "float32" else clone_generator(generator)


def load_generator(path: str) -> SoupGenerator:
    """Load a saved generator (`.keras`); importing this module registers the custom classes it needs."""
    return keras.saving.load_model(path, compile=False)


def average_generators(generators: Sequence[SoupGenerator]) -> SoupGenerator:
    """A float32 generator whose every weight is the mean of the given ones' (a "model soup": runs fine-tuned from
    one start stay in one basin, so their mean is a working network between or above them); one architecture only."""
    if not generators:
        raise InputError("no generators to average")
    architectures = [{key: g.get_config()[key] for key in ARCHITECTURE_KEYS} for g in generators]
    if any(architecture != architectures[0] for architecture in architectures):
        raise InputError(f"only generators of one architecture can be averaged, got {architectures}")
    average = clone_generator(generators[0])
    average.set_weights([np.mean([np.asarray(w, np.float64) for w in weights], axis=0).astype(np.float32)
                         for weights in zip(*[g.get_weights() for g in generators])])
    return average


def grow_generator(generator: SoupGenerator, slice_dilations: Sequence[int]) -> SoupGenerator:
    """A float32 generator that adds slice-axis reach blocks to a trained one without them: every trained
    weight is copied and the new blocks start as the identity, so it computes exactly what `generator` did
    and fine-tuning starts from the trained network's quality, not from scratch."""
    if generator.slice_dilations:
        raise InputError(f"the generator already has slice dilations {list(generator.slice_dilations)}; "
                         "only a generator without them can be grown")
    with dtype_policy("float32"):
        grown = SoupGenerator.from_config({**generator.get_config(), "dtype": "float32",
                                           "slice_dilations": list(slice_dilations)})
    grown.build({"image": (None, None, None, None, 1), "scale": (None,)})
    for source, target in zip([generator.entrance, *generator.trunk, generator.exit],
                              [grown.entrance, *grown.trunk, grown.exit]):
        target.set_weights(source.get_weights())
    return grown
