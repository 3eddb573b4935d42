"""Self-supervised adaptation of a generator to the one scan it is about to upsample (after SMORE/ECLARE).

A thick-slice scan is sharp in-plane: degrading it along an in-plane axis by s gives pairs whose target is
real high-resolution data of this very scan (its anatomy, contrast, noise and scanner). A few fine-tuning
steps on those pairs, with the shipped generator as the start, adapt it before it runs along the slice
axis. Pairs come from `pipeline.data.random_pairs` (the scan's thin axes only, the integer scales around s),
cut from the generator's own super-resolution of the scan: on the thick grid a pair's plane would hold the
slice axis squashed s-fold, anatomy the generator never sees at inference (measured: that domain gap made
adaptation lose at x3 and x6 on Colin27; on the thin grid it gains at both). It is not safe on every scan:
on nibabel's small 2 mm test scan it loses (BENCHMARKS.md), so it stays an option.
"""
from __future__ import annotations

import math
from typing import Callable

import keras

from model.training.gan import SoupGAN
from model.networks.generator import SoupGenerator, clone_generator
from model.training.inputs import volume_pairs_dataset
from model.inference.super_resolve import super_resolve
from pipeline.data.augmentation import AugmentationConfig
from pipeline.errors import InputError
from pipeline.method.geometry import upsampled_length
from pipeline.data.random_pairs import SamplerConfig, longest_pair
from pipeline.volume import Volume

MAX_PATCH = 32
MIN_PATCH = 16
MIN_SLICES = 16  # along the slice axis: every loss measured came on scans with fewer (BENCHMARKS.md)


def adaptation_scales(scale: float, generator: SoupGenerator) -> tuple[int, ...]:
    """The integer scales whose parameters a call at `scale` uses."""
    low, high = int(math.floor(scale)), int(math.ceil(scale))
    return tuple(s for s in sorted({low, high}) if s in generator.scales)


def adaptation_plan(generator: SoupGenerator, volume: Volume, scale: float, criterion: str, axis: int | None = None,
                    loss_margin: int = 6) -> tuple[int, tuple[int, ...], int]:
    """(slice axis, in-plane axes, pair size) for adapting to `volume`, from its geometry alone (nothing is run),
    or the InputError that says why it cannot be adapted to."""
    if volume.thin_axes() == (0, 1, 2):
        raise InputError("--adapt needs a thick-slice scan: this one has no axis coarser than the others")
    axis = volume.slice_axis(axis)
    in_plane = tuple(a for a in volume.thin_axes() if a != axis)
    if not in_plane:
        raise InputError(f"--adapt needs a thin axis besides slice axis {axis} to make training pairs along")
    if volume.shape[axis] < MIN_SLICES:
        raise InputError(f"--adapt: {volume.shape[axis]} slices are too few to adapt to (at least {MIN_SLICES}: "
                         "on fewer, the generator's own output is too poor a source and adaptation lost)")
    source_shape = list(volume.shape)
    source_shape[axis] = upsampled_length(volume.shape[axis], scale, criterion)
    patch = min(MAX_PATCH, *source_shape, *(longest_pair(source_shape[a], s, criterion)
                                            for a in in_plane for s in adaptation_scales(scale, generator)))
    if patch < MIN_PATCH or 2 * loss_margin >= patch:
        raise InputError(f"--adapt: a {'x'.join(map(str, volume.shape))} scan is too small to make training pairs from")
    return axis, in_plane, patch


def adaptation_pairs(generator: SoupGenerator, volume: Volume, scale: float, criterion: str, axis: int | None = None,
                     loss_margin: int = 6) -> tuple[Volume, SamplerConfig]:
    """The volume adaptation pairs are cut from (the generator's super-resolution of the scan along `axis`,
    default its coarsest) and the sampler settings that cut them along the scan's measured in-plane axes."""
    axis, in_plane, patch = adaptation_plan(generator, volume, scale, criterion, axis, loss_margin)
    source = super_resolve(volume, generator, scale, criterion, axis)
    return source, SamplerConfig(patch_size=patch, scales=adaptation_scales(scale, generator), criterion=criterion,
                                 augmentation=AugmentationConfig.none(), slice_axes=in_plane,
                                 consistent_input=generator.consistent_input, flow_input=generator.flow_input)


def adapt_generator(generator: SoupGenerator, volume: Volume, scale: float, criterion: str, steps: int,
                    axis: int | None = None, batch_size: int = 4, learning_rate: float = 1e-4, loss_margin: int = 6,
                    seed: int = 0, progress: Callable[[int, int], None] | None = None) -> SoupGenerator:
    """A copy of `generator` fine-tuned for `steps` steps on pairs made along the scan's own in-plane axes
    (`axis`: the slice axis the scan will be upsampled along, default its coarsest)."""
    source, sampler_config = adaptation_pairs(generator, volume, scale, criterion, axis, loss_margin)
    data = volume_pairs_dataset([source], sampler_config, batch_size, (seed,))
    adapted = clone_generator(generator)
    trainer = SoupGAN(adapted, loss_margin=loss_margin)
    trainer.build({"image": (None, *sampler_config.patch_shape, 1), "scale": (None,)})
    trainer.compile(keras.optimizers.Adam(learning_rate))
    callbacks = [keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: progress(batch + 1, steps))] \
        if progress else []
    trainer.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
    return adapted
