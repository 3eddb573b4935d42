"""Stage 1 on any Keras backend (`soupgan train --portable`): Keras `fit` of the generator alone on pairs drawn
from scans or read from a local shard set (`model.training.portable_sources`), into the same run folder as the
TensorFlow trainer (config.json, history.csv, curves.png, checkpoints with the optimizer's slots, last/best
generator, resume after a kill).

It imports no TensorFlow, so it runs under KERAS_BACKEND=jax on a GPU machine whose image has none; the
generators it saves load under TensorFlow for export. `model.training.trainer` (tf.distribute, remote shard
sets, stage 2) stays the product's trainer; both set a run up with `model.training.run_setup`.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
from typing import Sequence

import keras

from model.networks.generator import SoupGenerator, dtype_policy
from model.training.callbacks import EpochCheckpoint, TrainingCurves
from model.training.pixel_loss import PixelLoss
from model.training.portable_sources import portable_source
from model.training.run_setup import check_loss_margin, generator_learning_rate, initial_generator, open_run
from model.training.train_config import TrainConfig
from pipeline.errors import InputError

LOG = logging.getLogger("soupgan")


def compiled_generator(config: TrainConfig, patch_shape: Sequence[int], total_steps: int) -> SoupGenerator:
    """The run's starting generator, built for `patch_shape` pairs and compiled with Adam on the run's schedule
    over `total_steps`, its pixel loss and XLA setting (optimizer slots built, so a checkpoint loads into it)."""
    generator = initial_generator(config)
    generator.build({"image": (None, *patch_shape, 1), "scale": (None,)})
    generator.compile(keras.optimizers.Adam(generator_learning_rate(config, total_steps)),
                      loss=PixelLoss(config.pixel_loss, config.loss_margin), jit_compile=config.keras_jit_compile)
    generator.optimizer.build(generator.trainable_variables)
    return generator


def train_portable(config: TrainConfig) -> dict:
    """Run (or resume) stage 1 from `config.volumes` or `config.data` under the run's precision policy; returns a
    summary."""
    config.validate()
    if not config.portable:
        raise InputError("the portable trainer runs stage 1 with --portable")
    with dtype_policy(config.precision):
        return _train_portable(config)


def _train_portable(config: TrainConfig) -> dict:
    data = portable_source(config)
    check_loss_margin(config, data.patch_shape)
    steps = config.steps_per_epoch or data.train_batches
    monitor = "val_loss" if data.val_batches else "loss"
    if config.data and not data.val_batches:
        LOG.warning("no validation batches; the learning-rate schedule and the best model follow the training loss")
    run, state, initial_epoch, initial_step = open_run(config)
    if initial_epoch >= config.epochs:
        LOG.info("%s already finished %d epochs; nothing to do", config.out, initial_epoch)
        return {"epochs": initial_epoch, "resumed_from": initial_epoch, "backend": keras.backend.backend()}

    generator = compiled_generator(config, data.patch_shape, config.epochs * steps)
    if state:
        generator.load_weights(os.path.join(run.checkpoints, state["checkpoint"]))
        LOG.info("resuming %s from the checkpoint after epoch %d%s", config.out, initial_epoch,
                 f" and {initial_step} steps" if initial_step else "")

    restart = initial_epoch * steps + initial_step  # a restart draws a new data order, reproducibly
    callbacks = [keras.callbacks.TerminateOnNaN(), keras.callbacks.CSVLogger(run.history, append=True),
                 TrainingCurves(run, f"soupgan mse ({config.criterion}, {keras.backend.backend()})"),
                 EpochCheckpoint(run, monitor, best=state["best"] if state else math.inf,
                                 every=config.checkpoint_every, step_offset=initial_step)]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=config.lr_factor,
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
            batches = data.train((end - first) * per_epoch, (config.seed, restart, first))
            history = _fit(generator, batches, data.validation(), epochs=end, initial_epoch=first,
                           steps_per_epoch=per_epoch, shuffle=False, callbacks=callbacks,
                           verbose=1 if sys.stdout.isatty() else 2).history
    return {"epochs": config.epochs, "resumed_from": state["epoch"] if state else 0,
            "backend": keras.backend.backend(),
            "optimizer_steps": int(keras.ops.convert_to_numpy(generator.optimizer.iterations)),
            "monitor": monitor, "last": {key: float(values[-1]) for key, values in history.items()}}


def _fit(generator: SoupGenerator, batches, validation, **fit) -> keras.callbacks.History:
    """`generator.fit` on a source's batches; a damaged shard's InputError comes out as itself (TensorFlow's
    adapter wraps it in a tf.data error), and shard streams' read-ahead threads stop when it returns."""
    try:
        return generator.fit(batches, validation_data=validation, **fit)
    except Exception:
        error = next((data.error for data in (batches, validation) if getattr(data, "error", None)), None)
        if error is None:
            raise
        raise error from None
    finally:
        for data in (batches, validation):
            if hasattr(data, "close"):
                data.close()
