"""`soupgan degrade`: simulate a thick-slice acquisition of a thin-slice volume, with its true geometry."""
from __future__ import annotations

import argparse

from pipeline.config import CRITERIA, THIN_TO_THICK
from soupgan.console import add_input, input_path


def add_parser(commands) -> None:
    parser = commands.add_parser("degrade", help="simulate thick slices from a thin-slice volume")
    add_input(parser)
    parser.add_argument("--output", "-o", required=True, help="output .nii or .nii.gz")
    parser.add_argument("--scale", type=int, required=True, help="integer slice-thickness factor s >= 2")
    parser.add_argument("--criterion", choices=CRITERIA, default=THIN_TO_THICK)
    parser.add_argument("--sigma", type=float, help="gaussian criterion: σ in thin slices (default s/(2·√12))")
    parser.add_argument("--slice-axis", type=int, choices=(0, 1, 2), help="default: the axis of largest spacing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from pipeline.degradation import degrade_volume
    from pipeline.volume_io import read_volume, write_volume

    volume = read_volume(input_path(args), series_uid=args.series)
    low = degrade_volume(volume, args.scale, args.criterion, axis=args.slice_axis, sigma=args.sigma)
    write_volume(low, args.output)
    print(f"{volume.volume_id}: {volume.shape} -> {low.shape} ({args.criterion}, x{args.scale})")
