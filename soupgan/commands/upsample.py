"""`soupgan upsample`: whole-volume super-resolution of a thick-slice scan (NIfTI or DICOM series in and out),
or, with --labels, a label map carried onto the same thin-slice grid."""
from __future__ import annotations

import argparse
import logging
import math
import os
import time

from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.io.encoding import DTYPE_CHOICES
from pipeline.errors import InputError
from pipeline.io.nifti_io import is_nifti_path
from pipeline.io.safe_output import check_apart_from_inputs, check_output
from soupgan.console import ProgressBar, check_png_output, show_progress

LOG = logging.getLogger("soupgan")
UPSAMPLE_CRITERIA = (THIN_TO_THIN, THIN_TO_THICK)


def add_parser(commands) -> None:
    parser = commands.add_parser("upsample", help="super-resolve a thick-slice volume to thin slices")
    parser.add_argument("input", metavar="INPUT", help=".nii/.nii.gz file or DICOM series folder")
    parser.add_argument("output", metavar="OUTPUT", help=".nii/.nii.gz file, or a folder for a new DICOM series")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--scale", type=float, help="slice-thickness factor s in [2, 6], fractional allowed")
    size.add_argument("--target-spacing", type=float, metavar="MM", help="thin-slice spacing wanted, in mm")
    parser.add_argument("--criterion", choices=UPSAMPLE_CRITERIA, default=THIN_TO_THIN,
                        help="how the thick slices were acquired: thin-to-thin (gaps) or thin-to-thick (slabs)")
    parser.add_argument("--axis", default="auto", help="slice axis: auto (largest spacing), 0, 1 or 2")
    parser.add_argument("--model", help="training run folder, generator .keras or export folder (default: the shipped weights)")
    parser.add_argument("--server", metavar="HOST:PORT", help="query TF Serving (soupgan export) instead of running in-process")
    parser.add_argument("--tls", action="store_true", help="--server over TLS (system root certificates)")
    parser.add_argument("--tls-ca", metavar="PEM", help="--server over TLS, trusting this CA certificate (implies --tls)")
    parser.add_argument("--timeout", type=float, default=120.0, help="--server: deadline of each request, seconds")
    parser.add_argument("--max-message-mb", type=float, metavar="MB",
                        help="--server: the largest gRPC message on the way (a proxy's limit); larger volumes go "
                             "in parts (default: tensorflow_model_server's 2 GiB)")
    parser.add_argument("--labels", action="store_true",
                        help="INPUT is a label map: interpolate per-label signed distances instead of running the model")
    parser.add_argument("--preview", metavar="PNG", help="write thick input / tricubic / super-resolved, three planes")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing OUTPUT (and --preview): a file, or a series folder soupgan wrote")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="input",
                        help="NIfTI output type: the input's (its integer type and scaling; default) or float32")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to read from a folder holding several")
    parser.add_argument("--tile", default="auto",
                        help="tile cores D,H,W (slice axis first), or auto: the least work with at most 3.5 M voxels per "
                             "tile input; memory vs speed")
    parser.add_argument("--batch-size", type=int, default=1, help="tiles per network call")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="first fine-tune the generator for STEPS steps on pairs made from this scan's own "
                             "in-plane resolution (SMORE-style; 0.4-1 s a step on 2 CPU cores)")
    parser.set_defaults(run=run)


def parse_axis(text: str) -> int | None:
    if text == "auto":
        return None
    if text not in ("0", "1", "2"):
        raise InputError(f"--axis {text}: not a volume axis (auto, 0, 1 or 2)")
    return int(text)


def check_adapt_steps(steps: int) -> None:
    if steps < 0:
        raise InputError(f"--adapt {steps}: the number of steps must be >= 0")


def check_batch_size(size: int) -> None:
    if size < 1:
        raise InputError(f"--batch-size {size}: must be >= 1 (tiles per network call)")


def slice_axis(volume, override: int | None) -> int:
    """--axis, else the axis that is clearly the thick one; a scan with none is refused, not guessed at."""
    if override is not None:
        return override
    axis = volume.clear_thick_axis()
    if axis is None:
        spacing = " x ".join(f"{value:.3g}" for value in volume.spacing)
        raise InputError(f"no axis is clearly the thick one (voxels {spacing} mm); pass --axis 0, 1 or 2")
    return axis


def parse_tile(text: str) -> tuple[int, int, int] | None:
    """--tile D,H,W as cores, or None for auto (`model.inference.super_resolve.TILE_INPUT_VOXELS`)."""
    if text == "auto":
        return None
    try:
        tile = tuple(int(part) for part in text.split(","))
    except ValueError:
        tile = ()
    if len(tile) != 3 or min(tile) < 1:
        raise InputError(f"--tile {text}: expected auto or three positive integers D,H,W")
    return tile


def resolve_scale(args: argparse.Namespace, spacing: float) -> float:
    """--scale, or the input's slice spacing over --target-spacing; finite and > 1."""
    if args.scale is not None:
        if not math.isfinite(args.scale) or args.scale <= 1:
            raise InputError(f"--scale {args.scale:g}: must be a finite number > 1")
        return float(args.scale)
    target = args.target_spacing
    if not (math.isfinite(target) and target > 0):
        raise InputError(f"--target-spacing {target:g}: must be a positive number of mm")
    if spacing / target <= 1:
        raise InputError(f"--target-spacing {target:g} mm: the input's slices are {spacing:g} mm apart already "
                         f"(scale {spacing / target:.3g}); ask for a spacing below {spacing:g} mm")
    return float(spacing / target)


def is_dicom_output(path: str) -> bool:
    """A `.nii`/`.nii.gz` OUTPUT is NIfTI; a folder (existing, ending in /, or a name without a suffix) is a DICOM
    series; anything else (`out.nii.bz2`, `scan.mgz`) is refused rather than guessed at."""
    if is_nifti_path(path):
        return False
    if os.path.isdir(path) or path.endswith(("/", os.sep)) or "." not in os.path.basename(path.rstrip("/" + os.sep)):
        return True
    raise InputError(f"{path}: not .nii/.nii.gz, and a DICOM series goes to a folder (a name without a suffix, "
                     "or ending in /)")


def check_outputs(args: argparse.Namespace) -> None:
    """OUTPUT and --preview: their kind, apart from the input, replaceable, writable; all before any compute."""
    dicom = is_dicom_output(args.output)
    if dicom and args.dtype != "input":
        raise InputError(f"--dtype {args.dtype}: a DICOM series is stored as 16-bit integers; write .nii/.nii.gz")
    check_output(args.output.rstrip("/" + os.sep) or args.output, args.force, [args.input], folder=dicom)
    if args.preview:
        check_png_output(args.preview, args.force, [args.input])
        check_apart_from_inputs(args.preview, [args.output], role="output")


def write_output(volume, path: str, args: argparse.Namespace, encoding, axis: int, description: str) -> None:
    """NIfTI by suffix, in `encoding`; else a new DICOM series (of the input's study when the input is DICOM)."""
    from pipeline.io.dicom_io import read_template
    from pipeline.io.dicom_writer import write_dicom_series
    from pipeline.io.volume_io import write_volume

    if is_nifti_path(path):
        write_volume(volume, path, encoding, replace=args.force)
        return
    template = read_template(args.input, args.series) if os.path.isdir(args.input) else None
    write_dicom_series(volume, path.rstrip("/" + os.sep), template, slice_axis=axis, description=description,
                       replace=args.force)


def run(args: argparse.Namespace) -> None:
    from pipeline.io.encoding import in_input_range
    from pipeline.io.volume_io import read_encoding, read_volume

    show_progress()
    check_outputs(args)
    axis_override = parse_axis(args.axis)
    tile = parse_tile(args.tile)
    check_batch_size(args.batch_size)
    check_adapt_steps(args.adapt)
    volume = read_volume(args.input, series_uid=args.series)
    encoding = read_encoding(args.input, args.series)
    axis = slice_axis(volume, axis_override)
    scale = resolve_scale(args, float(volume.spacing[axis]))
    if not is_nifti_path(args.output):
        from pipeline.io.dicom_writer import check_dicom_grid

        check_dicom_grid(volume.affine, axis)
    started = time.perf_counter()
    result = in_input_range(upsample_with(args, volume, scale, axis, tile), volume, encoding)
    seconds = time.perf_counter() - started
    description = f"soupgan x{scale:g} {args.criterion}" + (" labels" if args.labels else "")
    write_output(result, args.output, args, encoding.written_as(args.dtype), axis, description)
    if args.preview:
        write_preview(volume, result, scale, args, axis, encoding)
    print(f"{volume.volume_id}: {volume.shape} -> {result.shape}, slice spacing {volume.spacing[axis]:.4g} -> "
          f"{result.spacing[axis]:.4g} mm, {result.data.size / seconds / 1e6:.2f} Mvoxel/s")


def read_certificate(path: str) -> bytes:
    """A PEM certificate's bytes, or a one-line error naming the file."""
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as err:
        raise InputError(f"--tls-ca {path}: {err.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise InputError(f"--tls-ca {path}: not a PEM certificate")
    return pem


def is_export_path(model: str) -> bool:
    from serving.local_export import is_export

    return is_export(model)


def upsample_with(args: argparse.Namespace, volume, scale: float, axis: int, tile):
    """The thin volume from what the flags name: label interpolation, a server, an export, or a generator."""
    if args.adapt and (args.labels or args.server or (args.model and is_export_path(args.model))):
        raise InputError("--adapt fine-tunes an in-process generator: not with --labels, --server or an export")
    if args.labels:
        from pipeline.method.labels import upsample_label_volume

        return upsample_label_volume(volume, scale, args.criterion, axis)
    if args.server:
        from serving.client import ClientOptions, ServingClient, upsample_remote

        if args.model:
            raise InputError("--model and --server exclude each other: the server holds the model")
        options = ClientOptions(timeout_s=args.timeout, tls=args.tls or bool(args.tls_ca),
                                root_certificates=read_certificate(args.tls_ca) if args.tls_ca else None)
        if args.max_message_mb is not None:
            if args.max_message_mb <= 0:
                raise InputError(f"--max-message-mb {args.max_message_mb:g}: must be > 0")
            options.max_message_bytes = int(args.max_message_mb * 1024 * 1024)
        client = ServingClient(args.server, options)
        try:
            return upsample_remote(volume, client, scale, args.criterion, axis)
        finally:
            client.close()
    from serving.local_export import upsample_with_export

    if args.model and is_export_path(args.model):
        return upsample_with_export(volume, args.model, scale, args.criterion, axis)
    from model.weights.model_source import resolve_generator
    from model.inference.super_resolve import Tiling, check_scale, super_resolve

    generator = resolve_generator(args.model, args.criterion)
    check_scale(generator, scale)
    LOG.info("%s: %s, slice axis %d, x%g %s", volume.volume_id, volume.shape, axis, scale, args.criterion)
    if args.adapt:
        from model.training.adaptation import adapt_generator

        generator = adapt_generator(generator, volume, scale, args.criterion, args.adapt, axis,
                                    progress=ProgressBar(f"{volume.volume_id} adapting", unit="steps"))
    return super_resolve(volume, generator, scale, args.criterion, axis, Tiling(tile, batch_size=args.batch_size),
                         progress=ProgressBar(f"{volume.volume_id} x{scale:g}"))


def write_preview(thick, result, scale: float, args: argparse.Namespace, axis: int, encoding) -> None:
    """Thick input, tricubic and super-resolved rows (thick and upsampled labels with --labels), in the
    input's display window."""
    from model.reports.preview import display_window, plot_preview
    from pipeline.method.interpolation import upsample_volume

    title = f"x{scale:g} {args.criterion}"
    if args.labels:
        plot_preview({"thick labels": thick, "upsampled labels": result}, args.preview, title, labels=True,
                     replace=args.force)
        return
    tricubic = upsample_volume(thick, scale, args.criterion, axis)
    plot_preview({"thick input": thick, "tricubic": tricubic, "super-resolved": result}, args.preview, title,
                 window=display_window(thick, encoding), replace=args.force)
