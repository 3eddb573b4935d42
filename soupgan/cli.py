"""`soupgan` console script: subcommands over pipeline/, beam_jobs/, model/ and serving/.

Bad input prints one line on stderr and exits 2; success exits 0.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the console

import nibabel as nib
import numpy as np

from model.train_config import STAGES, STRATEGIES, TrainConfig
from pipeline.config import CRITERIA, THIN_TO_THICK
from pipeline.errors import InputError
from pipeline.normalization import robust_window

EXIT_BAD_INPUT = 2


def example_volume_path() -> str:
    """The built-in example: the small T1 MRI (anatomical.nii) that ships with nibabel."""
    return os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


def _input_path(args: argparse.Namespace) -> str:
    if args.example == bool(args.input):
        raise InputError("give exactly one of INPUT or --example")
    return example_volume_path() if args.example else args.input


def cmd_info(args: argparse.Namespace) -> None:
    """Print a volume's geometry and intensity summary (no source path: only the hashed id)."""
    from pipeline.volume_io import read_volume

    volume = read_volume(_input_path(args), series_uid=args.series)
    window = robust_window(volume.data)
    summary = {
        "volume_id": volume.volume_id,
        "modality": volume.modality,
        "shape": list(volume.shape),
        "spacing_mm": [round(float(v), 4) for v in volume.spacing],
        "slice_axis": volume.slice_axis(),
        "orientation": "".join(nib.aff2axcodes(volume.affine)),
        "intensity_min_max": [float(volume.data.min()), float(volume.data.max())],
        "window_p0.5_p99.5": [window.low, window.high],
        "affine": np.round(volume.affine, 4).tolist(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:18s} {value}")


def cmd_degrade(args: argparse.Namespace) -> None:
    """Simulate a thick-slice acquisition of a thin-slice volume, with its true geometry."""
    from pipeline.degradation import degrade_volume
    from pipeline.volume_io import read_volume, write_volume

    volume = read_volume(_input_path(args), series_uid=args.series)
    low = degrade_volume(volume, args.scale, args.criterion, axis=args.slice_axis, sigma=args.sigma)
    write_volume(low, args.output)
    print(f"{volume.volume_id}: {volume.shape} -> {low.shape} ({args.criterion}, x{args.scale})")


def show_progress() -> None:
    """soupgan's INFO lines (one per volume, counters) on stderr; Beam/TF/Dask stay at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("soupgan")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def cmd_shards(args: argparse.Namespace) -> None:
    """Run the Beam job that writes TFRecord patch-pair shards (flags after INPUT... go to beam_jobs.shards)."""
    from beam_jobs.shards import run

    show_progress()
    manifest = run(args.shards_args)
    if manifest["inputs_read"] == 0:
        raise InputError(f"no input volume could be read ({manifest['inputs_failed']} failed); reasons in the dead letters")
    counts = ", ".join(f"{split} {manifest['counts'][split]['total']}" for split in manifest["counts"])
    print(f"{manifest['inputs_read']} volume(s) read, {manifest['inputs_failed']} failed; patch pairs: {counts}")


def cmd_train(args: argparse.Namespace) -> None:
    """Train (or resume) the generator, stage 1 (MSE) or stage 2 (GAN), into a run folder."""
    import tensorflow as tf

    from model.training import train

    show_progress()
    fields = {field: getattr(args, field) for field in TrainConfig.__dataclass_fields__ if hasattr(args, field)}
    try:
        summary = train(TrainConfig(**fields))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        raise InputError(f"unreadable training records: {err.message.splitlines()[0]}") from None
    print(json.dumps(summary))


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """`soupgan train` flags; their defaults are TrainConfig's."""

    default = TrainConfig(data="", out="")
    train.add_argument("--data", required=True, help="a shard set from `soupgan shards` (local, gs://, s3://)")
    train.add_argument("--out", required=True, help="run folder; rerunning the same command resumes it")
    train.add_argument("--stage", choices=STAGES, default=default.stage,
                       help="mse: generator alone; gan: perceptual + adversarial + MSE (needs --init)")
    train.add_argument("--init", metavar="RUN", help="stage-1 run whose best generator stage 2 starts from")
    train.add_argument("--epochs", type=int, default=default.epochs)
    train.add_argument("--steps-per-epoch", type=int, help="default: one pass over the train split")
    train.add_argument("--validation-steps", type=int, help="default: the whole val split")
    train.add_argument("--batch-size", type=int, default=default.batch_size, help="global batch, split across replicas")
    train.add_argument("--strategy", choices=STRATEGIES,
                       help="default: mirrored when --replicas > 1, else default; multiworker reads TF_CONFIG")
    train.add_argument("--replicas", type=int,
                       help="mirrored: GPUs to use, or logical devices to split a CPU-only host into")
    train.add_argument("--criterion", choices=CRITERIA, default=default.criterion, help="the degradation to learn")
    train.add_argument("--generator", choices=("residual", "rrdb"), default=default.generator)
    train.add_argument("--filters", type=int, default=default.filters, help="generator width")
    train.add_argument("--blocks", type=int, default=default.blocks, help="residual blocks (or RRDBs)")
    train.add_argument("--growth", type=int, default=default.growth, help="RRDB dense growth channels")
    train.add_argument("--disc-filters", type=int, default=default.disc_filters, help="discriminator width")
    train.add_argument("--learning-rate", type=float, help="generator Adam rate (default 3e-4 mse, 1e-4 gan)")
    train.add_argument("--d-learning-rate", type=float, default=default.d_learning_rate)
    train.add_argument("--lr-factor", type=float, default=default.lr_factor, help="plateau factor (default 1/3)")
    train.add_argument("--lr-patience", type=int, default=default.lr_patience, help="evaluations without improvement")
    train.add_argument("--perceptual-weight", type=float, default=default.perceptual_weight)
    train.add_argument("--adversarial-weight", type=float, default=default.adversarial_weight)
    train.add_argument("--mse-weight", type=float, default=default.mse_weight)
    train.add_argument("--vgg-weights", default=default.vgg_weights,
                       help="imagenet (Keras download), a local VGG19 .h5 file, or none (random; tests only)")
    train.add_argument("--perceptual-slices", type=int, help="slices per plane and step for the perceptual loss")
    train.add_argument("--seed", type=int, default=default.seed, help="shuffle seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soupgan",
        description="3D MRI/CT super-resolution along the slice axis (SOUP-GAN): thick slices in, thin slices out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_input(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("input", nargs="?", metavar="INPUT", help=".nii/.nii.gz file or DICOM series folder")
        sub.add_argument("--example", action="store_true", help="use the built-in example T1 volume instead of INPUT")
        sub.add_argument("--series", metavar="UID", help="SeriesInstanceUID to read from a folder holding several")

    info = commands.add_parser("info", help="show a volume's geometry, slice axis and intensities")
    add_input(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(run=cmd_info)

    degrade = commands.add_parser("degrade", help="simulate thick slices from a thin-slice volume")
    add_input(degrade)
    degrade.add_argument("--output", "-o", required=True, help="output .nii or .nii.gz")
    degrade.add_argument("--scale", type=int, required=True, help="integer slice-thickness factor s >= 2")
    degrade.add_argument("--criterion", choices=CRITERIA, default=THIN_TO_THICK)
    degrade.add_argument("--sigma", type=float, help="gaussian criterion: σ in thin slices (default s/(2·√12))")
    degrade.add_argument("--slice-axis", type=int, choices=(0, 1, 2), help="default: the axis of largest spacing")
    degrade.set_defaults(run=cmd_degrade)

    shards = commands.add_parser(
        "shards", add_help=False, help="Beam job: volumes -> TFRecord patch-pair shards (soupgan shards --help)"
    )
    shards.set_defaults(run=cmd_shards)

    train = commands.add_parser("train", help="train the multi-scale generator (stage mse or gan) into a run folder")
    add_train_arguments(train)
    train.set_defaults(run=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "shards":
        args.shards_args = argv[argv.index("shards") + 1 :]  # its own parser, then Beam's, read them all
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        args.run(args)
    except InputError as err:
        print(f"soupgan {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"soupgan {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
