"""`soupgan train`: build the stage's trainer under a tf.distribute strategy and fit it into a run folder,
resuming from the folder's last checkpoint when there is one."""
from __future__ import annotations

import logging
import math
import os
import sys
from typing import Sequence

import keras
import tensorflow as tf

from model.networks.discriminator import build_discriminator
from model.networks.generator import dtype_policy
from model.networks.detail_loss import TriPlanarLaplacianLoss
from model.networks.perceptual import TriPlanarPerceptualLoss
from model.training.callbacks import EpochCheckpoint, TrainingCurves
from model.training.distribution import is_chief, make_strategy
from model.training.gan import SoupGAN
from model.training.run_setup import check_loss_margin, generator_learning_rate, initial_generator, open_run
from model.training.sources import training_source
from model.training.train_config import TrainConfig
from pipeline.errors import InputError

LOG = logging.getLogger("soupgan")


def _check_batch_divides(config: TrainConfig, strategy: tf.distribute.Strategy) -> None:
    """The global batch is split evenly across replicas, or not at all."""
    if config.batch_size % strategy.num_replicas_in_sync:
        raise InputError(f"--batch-size {config.batch_size} is not divisible by the "
                         f"{strategy.num_replicas_in_sync} replicas")


def build_trainer(config: TrainConfig, patch_shape: Sequence[int], total_steps: int | None = None) -> SoupGAN:
    """The stage's trainer with compiled, built optimizers; call inside `strategy.scope()` after the precision
    policy is set. `total_steps` is the cosine schedule's length."""
    generator = initial_generator(config)
    discriminator = perceptual = None
    if config.stage == "gan":
        discriminator = build_discriminator(config.disc_filters)
        perceptual = (TriPlanarPerceptualLoss(config.vgg_weights, config.perceptual_slices)
                      if config.perceptual == "vgg19" else TriPlanarLaplacianLoss())
    check_loss_margin(config, patch_shape)
    trainer = SoupGAN(generator, discriminator, perceptual, config.perceptual_weight, config.adversarial_weight,
                      config.mse_weight, config.loss_margin, config.pixel_loss)
    trainer.build({"image": (None, *patch_shape, 1), "scale": (None,)})
    learning_rate = generator_learning_rate(config, total_steps or 1)
    d_optimizer = None
    if config.stage == "gan":
        d_optimizer = keras.optimizers.Adam(config.d_learning_rate)
        if config.precision == "mixed_float16":
            d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
    # Keras wraps the generator's optimizer in a LossScaleOptimizer itself under mixed_float16
    trainer.compile(keras.optimizers.Adam(learning_rate), d_optimizer=d_optimizer,
                    jit_compile=config.keras_jit_compile)
    trainer.build_optimizers()
    return trainer


def _task_index(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.task_type else 0


def train(config: TrainConfig) -> dict:
    """Run (or resume) training under the run's precision policy; returns a summary of the run."""
    config.validate()
    with dtype_policy(config.precision):
        return _train(config)


def _train(config: TrainConfig) -> dict:
    strategy = make_strategy(config.strategy_name, config.replicas)
    _check_batch_divides(config, strategy)
    data = training_source(config)
    steps = config.steps_per_epoch or data.train_batches
    monitor = "val_loss" if data.val_batches else "loss"
    if not data.val_batches:
        LOG.warning("no validation batches; the learning-rate schedule and the best model follow the training loss")

    chief = is_chief(strategy)
    run, state, initial_epoch, initial_step = open_run(config, write=chief)
    if initial_epoch >= config.epochs:
        LOG.info("%s already finished %d epochs; nothing to do", config.out, initial_epoch)
        return {"epochs": initial_epoch, "resumed_from": initial_epoch, "replicas": strategy.num_replicas_in_sync}

    with strategy.scope():
        trainer = build_trainer(config, data.patch_shape, config.epochs * steps)
        if state:
            trainer.load_weights(os.path.join(run.checkpoints, state["checkpoint"]))
            LOG.info("resuming %s from the checkpoint after epoch %d%s", config.out, initial_epoch,
                     f" and {initial_step} steps" if initial_step else "")

    # a restart (and each worker) draws a new data order, reproducibly from the seed and the resume point
    restart = initial_epoch * steps + initial_step
    callbacks = _callbacks(config, run, monitor, chief, state, initial_step)
    fit = dict(x=data.train(restart, _task_index(strategy)), validation_data=data.validation(),
               validation_steps=config.validation_steps, callbacks=callbacks,
               verbose=1 if sys.stdout.isatty() else 2, shuffle=False)  # tf.data shuffles; Keras warns otherwise
    history = {}
    if initial_step:  # finish the interrupted epoch with the steps it still lacks
        history = trainer.fit(epochs=initial_epoch + 1, initial_epoch=initial_epoch,
                              steps_per_epoch=steps - initial_step, **fit).history
        initial_epoch += 1
    if initial_epoch < config.epochs:
        history = trainer.fit(epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps, **fit).history
    return {"epochs": config.epochs, "resumed_from": state["epoch"] if state else 0,
            "replicas": strategy.num_replicas_in_sync, "optimizer_steps": int(trainer.optimizer.iterations.numpy()),
            "monitor": monitor, "last": {key: float(values[-1]) for key, values in history.items()}}


def _callbacks(config: TrainConfig, run, monitor: str, chief: bool, state: dict | None,
               initial_step: int) -> list[keras.callbacks.Callback]:
    """NaN stop, the plateau rule, the chief's logs and curves, and the checkpoint after each epoch (or step)."""
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=config.lr_factor,
                                                           patience=config.lr_patience, verbose=1))
    if chief:
        callbacks += [keras.callbacks.TensorBoard(run.logs), keras.callbacks.CSVLogger(run.history, append=True),
                      TrainingCurves(run, f"soupgan {config.stage} ({config.criterion})")]
    callbacks.append(EpochCheckpoint(run, monitor, best=state["best"] if state else math.inf, write=chief,
                                     every=config.checkpoint_every, step_offset=initial_step))
    return callbacks
