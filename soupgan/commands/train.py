"""`soupgan train`: train (or resume) the generator, stage 1 (MSE) or stage 2 (GAN), into a run folder."""
from __future__ import annotations

import argparse
import json

from model.training.train_config import (JIT_SETTINGS, LR_SCHEDULES, PERCEPTUAL_TERMS, PIXEL_LOSSES, PRECISIONS, STAGES,
                                         STRATEGIES, TrainConfig)
from pipeline.config import CRITERIA, scales_argument
from pipeline.errors import InputError
from soupgan.console import show_progress


def add_parser(commands) -> None:
    parser = commands.add_parser("train", help="train the multi-scale generator (stage mse or gan) into a run folder")
    add_train_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    show_progress()
    config = config_from_args(args)
    print(json.dumps(_train_portable(config) if config.portable else _train_tensorflow(config)))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig from parsed `soupgan train` flags."""
    return TrainConfig(**{field: getattr(args, field) for field in TrainConfig.__dataclass_fields__
                          if hasattr(args, field)})


def _train_portable(config: TrainConfig) -> dict:
    from model.training.portable_training import train_portable  # imports no TensorFlow

    return train_portable(config)


def _train_tensorflow(config: TrainConfig) -> dict:
    import tensorflow as tf

    from model.training.trainer import train

    try:
        return train(config)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        raise InputError(f"unreadable training records: {err.message.splitlines()[0]}") from None


def dilation_list(text: str) -> list[int]:
    """'2,4' -> [2, 4]: one slice-axis reach block per dilation (TrainConfig checks that they are >= 1)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers like 2,4") from None


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """`soupgan train` flags, in groups; their defaults are TrainConfig's."""
    default = TrainConfig()
    _data_arguments(train.add_argument_group("data", "where pairs come from and how they are made"), default)
    _run_arguments(train.add_argument_group("run", "the run folder, its stage and its length"), default)
    _network_arguments(train.add_argument_group("network", "the generator and the discriminator"), default)
    _losses_arguments(train.add_argument_group("losses", "losses, learning rates and their schedule"), default)
    _execution_arguments(train.add_argument_group("execution", "devices, precision and compilation"), default)


def _data_arguments(group, default: TrainConfig) -> None:
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a shard set from `soupgan shards` (local, gs://, s3://; --portable: local)")
    source.add_argument("--volumes", nargs="+", metavar="SCAN",
                        help="thin-slice scans (NIfTI or DICOM folders) to draw augmented pairs from on the fly: "
                             "every slice axis of isotropic scans, random phases, flips, contrasts")
    group.add_argument("--criterion", choices=CRITERIA, default=default.criterion, help="the degradation to learn")
    group.add_argument("--scales", type=scales_argument,
                       help="--volumes: the scales pairs are drawn at (default 2,3,4,5,6); ratios p/q with q <= 8 "
                            "too (2.5: thick slices 5 thin slices apart against thin slices 2 apart)")
    group.add_argument("--patch-size", type=int, default=default.patch_size, help="--volumes: pair size in voxels")
    group.add_argument("--patch-depth", type=int,
                       help="--volumes: pair length along the slice axis (default --patch-size; longer for "
                            "slice-axis reach)")
    group.add_argument("--no-augment", dest="augment", action="store_false",
                       help="--volumes: no intensity augmentation (contrast, gamma, bias field, noise)")
    group.add_argument("--consistent-input", action="store_true",
                       help="thin-to-thick: inputs have each slab's mean restored to its thick slice (recorded in the "
                            "generator; every path that runs it does the same). --data: taken from the shard set")
    group.add_argument("--flow-input", action="store_true",
                       help="inputs are the flow-guided slice interpolation (pipeline.method.slice_flow), not the spline "
                            "(recorded in the generator). --data: taken from the shard set (`soupgan shards --input`)")
    group.add_argument("--seed", type=int, default=default.seed, help="data order seed")
    group.add_argument("--data-workers", type=int, default=default.data_workers,
                       help="--portable --volumes: processes drawing pairs (default 0: the training process)")


def _run_arguments(group, default: TrainConfig) -> None:
    group.add_argument("--out", required=True, help="run folder; rerunning the same command resumes it")
    group.add_argument("--stage", choices=STAGES, default=default.stage,
                       help="mse: generator alone; gan: perceptual + adversarial + MSE (needs --init)")
    group.add_argument("--init", metavar="RUN_OR_KERAS",
                       help="start from a run's best generator or from a generator .keras file (gan: stage-1 weights)")
    group.add_argument("--epochs", type=int, default=default.epochs)
    group.add_argument("--steps-per-epoch", type=int, help="default: one pass over the train split")
    group.add_argument("--validation-steps", type=int, help="default: the whole val split")
    group.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                       help="also checkpoint every STEPS steps inside an epoch (a kill loses at most that many)")


def _network_arguments(group, default: TrainConfig) -> None:
    group.add_argument("--generator", choices=("residual", "rrdb"), default=default.generator)
    group.add_argument("--filters", type=int, default=default.filters, help="generator width")
    group.add_argument("--blocks", type=int, default=default.blocks, help="residual blocks (or RRDBs)")
    group.add_argument("--slice-dilations", type=dilation_list, metavar="D,D,...",
                       help="add residual blocks dilated by D along the slice axis only (more reach there); with "
                            "--init they are added to that generator, starting as the identity")
    group.add_argument("--growth", type=int, default=default.growth, help="RRDB dense growth channels")
    group.add_argument("--disc-filters", type=int, default=default.disc_filters, help="discriminator width")


def _losses_arguments(group, default: TrainConfig) -> None:
    group.add_argument("--learning-rate", type=float, help="generator Adam rate (default 3e-4 mse, 1e-4 gan)")
    group.add_argument("--d-learning-rate", type=float, default=default.d_learning_rate)
    group.add_argument("--lr-factor", type=float, default=default.lr_factor, help="plateau factor (default 1/3)")
    group.add_argument("--lr-patience", type=int, default=default.lr_patience, help="evaluations without improvement")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=default.lr_schedule,
                       help="plateau: divide by --lr-factor when the monitored loss stalls; cosine: decay over the run")
    group.add_argument("--perceptual-weight", type=float, default=default.perceptual_weight)
    group.add_argument("--adversarial-weight", type=float, default=default.adversarial_weight)
    group.add_argument("--mse-weight", type=float, default=default.mse_weight)
    group.add_argument("--perceptual", choices=PERCEPTUAL_TERMS, default=default.perceptual,
                       help=f"stage 2's perceptual term: laplacian (tri-planar Laplacian pyramid, offline) or vgg19 "
                            f"(VGG19-54 features; see --vgg-weights). Default {default.perceptual}")
    group.add_argument("--vgg-weights", default=default.vgg_weights,
                       help="--perceptual vgg19: imagenet (Keras download), a local VGG19 .h5 file, or none (random)")
    group.add_argument("--perceptual-slices", type=int, help="--perceptual vgg19: slices per plane and step")
    group.add_argument("--loss-margin", type=int, default=default.loss_margin,
                       help="voxels at each patch face left out of the MSE, where zero padding stands in for tissue")
    group.add_argument("--pixel-loss", choices=PIXEL_LOSSES, default=default.pixel_loss,
                       help="stage 1: MSE over the batch, or the mean of each sample's log MSE (gains in dB)")


def _execution_arguments(group, default: TrainConfig) -> None:
    group.add_argument("--batch-size", type=int, default=default.batch_size, help="global batch, split across replicas")
    group.add_argument("--strategy", choices=STRATEGIES,
                       help="default: mirrored when --replicas > 1, else default; multiworker reads TF_CONFIG")
    group.add_argument("--replicas", type=int,
                       help="mirrored: GPUs to use, or logical devices to split a CPU-only host into")
    group.add_argument("--precision", choices=PRECISIONS, default=default.precision,
                       help="Keras dtype policy (mixed_float16 on GPUs; saved generators are always float32)")
    group.add_argument("--jit-compile", choices=JIT_SETTINGS, default=default.jit_compile,
                       help="XLA-compile the train step (auto: Keras decides, on for GPUs)")
    group.add_argument("--portable", action="store_true",
                       help="stage 1 with Keras fit on the KERAS_BACKEND in use, without TensorFlow (e.g. "
                            "KERAS_BACKEND=jax on a GPU), from --volumes or a local --data shard set; one device, "
                            "no stage 2")
