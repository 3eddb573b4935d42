"""Stage 1 on any Keras backend (`soupgan train --portable`): Keras `fit` of the generator alone on pairs drawn
by `pipeline.random_pairs`, into the same run folder as the TensorFlow trainer (config.json, history.csv,
curves.png, checkpoints with the optimizer's slots, last/best generator, resume after a kill).

It imports no TensorFlow, so it runs under KERAS_BACKEND=jax on a GPU machine whose image has none; the
generators it saves load under TensorFlow for export. `model.training` (tf.distribute, shards, stage 2)
stays the product's trainer and shares the pieces defined here.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import os
import sys
from typing import Sequence

import keras
import numpy as np

from model.callbacks import EpochCheckpoint, TrainingCurves
from model.generator import SoupGenerator, dtype_policy, grow_generator, load_generator
from model.pixel_loss import PixelLoss
from model.run_dir import RunDirectory, write_json_atomic
from model.train_config import TrainConfig, check_restart
from pipeline.augmentation import AugmentationConfig
from pipeline.config import SCALES
from pipeline.errors import InputError
from pipeline.random_pairs import RandomPairSampler, SamplerConfig
from pipeline.volume_io import read_volume

LOG = logging.getLogger("soupgan")


def initial_generator(config: TrainConfig) -> SoupGenerator:
    """The generator a run starts from: `--init` (a run folder's best generator or a `.keras` file, grown by
    `--slice-dilations` when it has no reach blocks yet) or a new one, set to the run's `--consistent-input` and
    `--flow-input`."""
    dilations = tuple(config.slice_dilations or ())
    if not config.init:
        return SoupGenerator(config.generator, config.filters, config.blocks, config.growth,
                             slice_dilations=dilations, consistent_input=config.consistent_input,
                             flow_input=config.flow_input)
    path = config.init if config.init.endswith(".keras") else RunDirectory(config.init).best_generator
    if not os.path.isfile(path):
        raise InputError(f"--init {config.init}: no such generator .keras file" if config.init.endswith(".keras")
                         else f"--init {config.init}: no best_generator.keras there (is it a finished stage-1 run?)")
    generator = load_generator(path)
    if generator.consistent_input and not config.consistent_input:
        raise InputError(f"--init {config.init} was trained on consistent thin-to-thick inputs: "
                         "give --consistent-input")
    if generator.flow_input and not config.flow_input:
        raise InputError(f"--init {config.init} was trained on flow-guided inputs: give --flow-input")
    generator.consistent_input = config.consistent_input  # a plain-input generator may learn the consistent one
    generator.flow_input = config.flow_input  # or the flow-guided one
    if not dilations or generator.slice_dilations == dilations:
        return generator
    if generator.slice_dilations:
        raise InputError(f"--init {config.init} has slice dilations {list(generator.slice_dilations)}, "
                         f"not {list(dilations)}")
    return grow_generator(generator, dilations)


def generator_learning_rate(config: TrainConfig, total_steps: int):
    """The generator's learning rate: constant (the plateau rule lowers it) or a cosine decay over the run."""
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.g_learning_rate, max(total_steps, 1), alpha=0.01)
    return config.g_learning_rate


def pair_sampler_config(config: TrainConfig) -> SamplerConfig:
    """How `--volumes` pairs are drawn: the run's patch size and criterion, every scale, augmentation on or off."""
    return SamplerConfig(patch_size=config.patch_size, patch_depth=config.patch_depth, scales=SCALES,
                         criterion=config.criterion, consistent_input=config.consistent_input,
                         flow_input=config.flow_input,
                         augmentation=AugmentationConfig() if config.augment else AugmentationConfig.none())


def check_loss_margin(config: TrainConfig, patch_shape: Sequence[int]) -> None:
    if 2 * config.loss_margin >= min(patch_shape):
        raise InputError(f"--loss-margin {config.loss_margin} leaves nothing of a "
                         f"{'x'.join(map(str, patch_shape))}-voxel patch")


def open_run(config: TrainConfig, write: bool = True) -> tuple[RunDirectory, dict | None, int, int]:
    """The run folder (refused if it holds a different run; made, with config.json, when `write`), its last
    checkpoint's state (None for a fresh run), and the epoch and step to start from."""
    run = RunDirectory(config.out)
    check_restart(run.read_config(), config)
    state = run.read_state()
    if write:
        run.create()
        if run.read_config() is None:  # a restart keeps the first run's settings file
            write_json_atomic(run.config, dataclasses.asdict(config))
    return run, state, *((state["epoch"], state.get("step", 0)) if state else (0, 0))


def compiled_generator(config: TrainConfig, patch_shape: Sequence[int], total_steps: int) -> SoupGenerator:
    """The run's starting generator, built for `patch_shape` pairs and compiled with Adam on the run's schedule
    over `total_steps`, its pixel loss and XLA setting (optimizer slots built, so a checkpoint loads into it)."""
    generator = initial_generator(config)
    generator.build({"image": (None, *patch_shape, 1), "scale": (None,)})
    generator.compile(keras.optimizers.Adam(generator_learning_rate(config, total_steps)),
                      loss=PixelLoss(config.pixel_loss, config.loss_margin), jit_compile=config.keras_jit_compile)
    generator.optimizer.build(generator.trainable_variables)
    return generator


class RandomPairBatches(keras.utils.PyDataset):
    """`batches` batches of ({"image", "scale"}, target) drawn at random, for one `fit` call over all its epochs
    (Keras keeps one iterator across epochs when `steps_per_epoch` is given). Batch i comes from the seed
    sequence (*seed, i): reproducible, whichever worker process draws it, and never drawn twice."""

    def __init__(self, sampler: RandomPairSampler, batch_size: int, batches: int, seed: Sequence[int],
                 workers: int = 0):
        super().__init__(workers=max(workers, 1), use_multiprocessing=workers > 0)
        self.sampler, self.batch_size, self.batches, self.seed = sampler, batch_size, batches, tuple(seed)

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        rng = np.random.default_rng([*self.seed, index])
        inputs, targets, scales = self.sampler.batch(self.batch_size, rng)
        return {"image": inputs[..., None], "scale": scales}, targets[..., None]


def train_portable(config: TrainConfig) -> dict:
    """Run (or resume) stage 1 from `config.volumes` under the run's precision policy; returns a summary."""
    config.validate()
    if not config.portable or not config.volumes:
        raise InputError("the portable trainer runs stage 1 from --volumes (--portable)")
    with dtype_policy(config.precision):
        return _train_portable(config)


def _train_portable(config: TrainConfig) -> dict:
    sampler_config = pair_sampler_config(config)
    check_loss_margin(config, sampler_config.patch_shape)
    sampler = RandomPairSampler([read_volume(path) for path in config.volumes], sampler_config)
    steps = config.steps_per_epoch
    run, state, initial_epoch, initial_step = open_run(config)
    if initial_epoch >= config.epochs:
        LOG.info("%s already finished %d epochs; nothing to do", config.out, initial_epoch)
        return {"epochs": initial_epoch, "resumed_from": initial_epoch, "backend": keras.backend.backend()}

    generator = compiled_generator(config, sampler_config.patch_shape, config.epochs * steps)
    if state:
        generator.load_weights(os.path.join(run.checkpoints, state["checkpoint"]))
        LOG.info("resuming %s from the checkpoint after epoch %d%s", config.out, initial_epoch,
                 f" and {initial_step} steps" if initial_step else "")

    restart = initial_epoch * steps + initial_step  # a restart draws a new data order, reproducibly
    callbacks = [keras.callbacks.TerminateOnNaN(), keras.callbacks.CSVLogger(run.history, append=True),
                 TrainingCurves(run, f"soupgan mse ({config.criterion}, {keras.backend.backend()})"),
                 EpochCheckpoint(run, "loss", best=state["best"] if state else math.inf,
                                 every=config.checkpoint_every, step_offset=initial_step)]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=config.lr_factor,
                                                           patience=config.lr_patience, verbose=1))
    phases = []  # (first epoch, end epoch, steps per epoch) of each fit
    if initial_step:  # finish the interrupted epoch with the steps it still lacks
        phases.append((initial_epoch, initial_epoch + 1, steps - initial_step))
        initial_epoch += 1
    phases.append((initial_epoch, config.epochs, steps))
    if config.data_workers and keras.backend.backend() == "jax":
        # JAX's threads make a forked worker liable to deadlock (JAX warns so): start workers from a clean server
        multiprocessing.set_start_method("forkserver", force=True)
    history = {}
    for first, end, per_epoch in phases:
        if first < end:
            data = RandomPairBatches(sampler, config.batch_size, (end - first) * per_epoch,
                                     (config.seed, restart, first), config.data_workers)
            history = generator.fit(data, epochs=end, initial_epoch=first, steps_per_epoch=per_epoch, shuffle=False,
                                    callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2).history
    return {"epochs": config.epochs, "resumed_from": state["epoch"] if state else 0,
            "backend": keras.backend.backend(),
            "optimizer_steps": int(keras.ops.convert_to_numpy(generator.optimizer.iterations)),
            "monitor": "loss", "last": {key: float(values[-1]) for key, values in history.items()}}
