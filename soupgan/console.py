"""What the commands share: the built-in example volumes, progress on stderr, input and figure arguments."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import nibabel as nib

from pipeline.errors import InputError
from pipeline.io.safe_output import check_output


def example_volume_path() -> str:
    """The built-in example: the small real T1 MRI (anatomical.nii, 2 mm) that ships with nibabel."""
    return os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


def add_input(parser: argparse.ArgumentParser) -> None:
    """INPUT, --example and --series, as `info` and `degrade` take them."""
    parser.add_argument("input", nargs="?", metavar="INPUT", help=".nii/.nii.gz file or DICOM series folder")
    parser.add_argument("--example", action="store_true", help="use the built-in example T1 volume instead of INPUT")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to read from a folder holding several")


def input_path(args: argparse.Namespace) -> str:
    if args.example == bool(args.input):
        raise InputError("give exactly one of INPUT or --example")
    return example_volume_path() if args.example else args.input


def check_png_output(path: str, force: bool, inputs=(), make_parents: bool = False) -> None:
    """A figure's path: a .png, apart from the inputs, replaced only with --force, writable; before any compute."""
    if not str(path).lower().endswith(".png"):
        raise InputError(f"{path}: figures are written as PNG; name a .png file")
    check_output(path, force, inputs, make_parents=make_parents)


def show_progress() -> None:
    """soupgan's INFO lines on stderr; Beam/TF/Dask stay at WARNING."""
    logger = logging.getLogger("soupgan")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class ProgressBar:
    """`progress(done, total)` for long loops: a redrawn bar on a terminal, a line per 10% otherwise."""

    def __init__(self, label: str, stream=None, unit: str = "tiles"):
        self.label, self.stream, self.unit = label, stream or sys.stderr, unit
        self.start = time.perf_counter()
        self.tty = self.stream.isatty()
        self.reported = -1

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        eta = elapsed / done * (total - done) if done else 0.0
        text = f"{self.label}: {done}/{total} {self.unit}, {elapsed:.0f}s elapsed, ~{eta:.0f}s left"
        if self.tty:
            filled = int(30 * done / total)
            end = "\n" if done == total else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {text}{end}")
            self.stream.flush()
        elif done * 10 // total > self.reported:
            self.reported = done * 10 // total
            print(text, file=self.stream, flush=True)
