"""What both trainers (`model.training.trainer` under TensorFlow, `model.training.portable_training` on any Keras
backend) set up the same way: the generator a run starts from, its learning rate, how `--volumes` pairs are
drawn, the loss margin's check and the run folder. No TensorFlow here, so the portable trainer stays free of it."""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import keras

from model.networks.generator import SoupGenerator, grow_generator, load_generator
from model.training.train_config import TrainConfig, check_restart
from model.weights.run_dir import RunDirectory, write_json_atomic
from pipeline.config import SCALES
from pipeline.data.augmentation import AugmentationConfig
from pipeline.data.random_pairs import SamplerConfig
from pipeline.errors import InputError


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
    """How `--volumes` pairs are drawn: the run's patch size, criterion and scales (default every whole one from
    2 to 6), augmentation on or off."""
    return SamplerConfig(patch_size=config.patch_size, patch_depth=config.patch_depth,
                         scales=tuple(config.scales or SCALES),
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
