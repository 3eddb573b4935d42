"""`soupgan degrade`: simulate a thick-slice acquisition of a thin-slice volume, with its true geometry."""
from __future__ import annotations

import argparse

from pipeline.config import CRITERIA, THIN_TO_THICK
from pipeline.errors import InputError
from pipeline.io.nifti_io import is_nifti_path
from pipeline.io.safe_output import check_output
from soupgan.console import add_input, input_path


def add_parser(commands) -> None:
    parser = commands.add_parser("degrade", help="simulate thick slices from a thin-slice volume")
    add_input(parser)
    parser.add_argument("--output", "-o", required=True, help="output .nii or .nii.gz")
    parser.add_argument("--scale", type=int, required=True, help="integer slice-thickness factor s >= 2")
    parser.add_argument("--criterion", choices=CRITERIA, default=THIN_TO_THICK)
    parser.add_argument("--sigma", type=float, help="gaussian criterion: σ in thin slices (default s/(2·√12))")
    parser.add_argument("--slice-axis", type=int, choices=(0, 1, 2), help="default: the axis of largest spacing")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from pipeline.method.degradation import degrade_volume
    from pipeline.io.volume_io import read_volume, write_volume

    source = input_path(args)
    if not is_nifti_path(args.output):
        raise InputError(f"{args.output}: output must end in .nii or .nii.gz")
    check_output(args.output, args.force, [source])
    volume = read_volume(source, series_uid=args.series)
    low = degrade_volume(volume, args.scale, args.criterion, axis=args.slice_axis, sigma=args.sigma)
    write_volume(low, args.output, replace=args.force)
    print(f"{volume.volume_id}: {volume.shape} -> {low.shape} ({args.criterion}, x{args.scale})")
