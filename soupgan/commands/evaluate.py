"""`soupgan evaluate`: degrade a thin-slice volume by each scale, then score tricubic, the flow-guided
interpolation a flow-input model refines, the model, optionally the model adapted to each degraded scan
(`--adapt`), another generator (`--baseline`, e.g. the shipped one a retrained model would replace) and a
reference SavedModel against it (RMSE/PSNR/SSIM table, JSON and a PNG like the paper's Fig. 5)."""
from __future__ import annotations

import argparse
import json
import os

from pipeline.config import THIN_TO_THIN, parse_fractional_scales, scale_label, scale_ratio
from pipeline.errors import InputError
from pipeline.io.safe_output import check_output
from pipeline.io.staging import staged
from soupgan.commands.upsample import UPSAMPLE_CRITERIA, check_adapt_steps, parse_axis
from soupgan.console import check_png_output, show_progress

RESULT_FILES = ("metrics.json", "metrics.png", "comparison.png")
SHIPPED_BASELINE = "shipped"  # --baseline: the installed default generator of the criterion


def evaluation_scales(text: str) -> tuple[float, ...]:
    """--scales: integers >= 2 or ratios p/q (a fractional scale is scored against the thin slices the scan has
    on its grid, `pipeline.method.degradation.thin_reference`)."""
    try:
        return parse_fractional_scales(text)
    except InputError as err:
        raise InputError(f"--scales {text}: {err}") from None


def check_results_folder(args: argparse.Namespace) -> None:
    """metrics.json and the two figures in --out: apart from the input, replaced only with --force, writable."""
    for name in RESULT_FILES:
        path = os.path.join(args.out, name)
        if name.endswith(".png"):
            check_png_output(path, args.force, [args.input], make_parents=True)
        else:
            check_output(path, args.force, [args.input], make_parents=True)


def check_scoreable(hr, scales, criterion: str, axis: int, crop: int | None) -> None:
    """Refuse, before any scoring, a scale whose thin slices are too few to degrade or to score with SSIM."""
    from model.reports.evaluation import scored_shape
    from pipeline.method.geometry import degraded_length
    from pipeline.metrics import SSIM_MIN_SIZE

    if crop is not None and crop < SSIM_MIN_SIZE:
        raise InputError(f"--crop {crop}: SSIM needs at least {SSIM_MIN_SIZE} voxels along every axis")
    shape = " x ".join(map(str, hr.shape))
    for scale in scales:
        if degraded_length(hr.shape[axis], scale_ratio(scale)[0], criterion) < 2:
            raise InputError(f"x{scale_label(scale)}: {hr.shape[axis]} slices along axis {axis} leave fewer than 2 "
                             "thick slices; drop this scale")
        scored = scored_shape(hr.shape, scale, criterion, axis, crop)
        if min(scored) < SSIM_MIN_SIZE:
            raise InputError(f"volume {shape} is too small to score at x{scale_label(scale)}: SSIM needs at least "
                             f"{SSIM_MIN_SIZE} voxels along every axis of the {' x '.join(map(str, scored))} thin "
                             "slices scored")


def add_parser(commands) -> None:
    parser = commands.add_parser("evaluate", help="score the model against tricubic on a thin-slice volume")
    parser.add_argument("input", metavar="HR_VOLUME", help="thin-slice .nii/.nii.gz or DICOM series folder")
    parser.add_argument("--scales", default="2,3,4,5,6",
                        help="scales to degrade by and score (default 2,3,4,5,6); ratios p/q with q <= 8 too "
                             "(2.5: degraded by 5, scored on the scan's slices 2 apart)")
    parser.add_argument("--criterion", choices=UPSAMPLE_CRITERIA, default=THIN_TO_THIN)
    parser.add_argument("--axis", default="auto", help="slice axis to degrade: auto, 0, 1 or 2")
    parser.add_argument("--model", help="training run folder or generator .keras (default: the shipped weights)")
    parser.add_argument("--reference", metavar="SAVEDMODEL", help="a SavedModel in the SOUP-GAN authors' layout")
    parser.add_argument("--baseline", metavar="MODEL",
                        help="another generator scored beside --model as the `baseline` row: a run folder, a "
                             f".keras file or `{SHIPPED_BASELINE}` (the installed default of the criterion)")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="also score `upsample --adapt STEPS` (whether adapting to scans like this one pays)")
    parser.add_argument("--crop", type=int, help="score only the in-plane centre CROP×CROP")
    parser.add_argument("--out", default="soupgan-evaluation", help="folder for metrics.json, metrics.png, comparison.png")
    parser.add_argument("--force", action="store_true", help="replace results already in --out")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to read from a folder holding several")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from model.reports.evaluation import evaluate_scales, format_table, generator_methods
    from model.reports.figures import plot_metrics_vs_scale
    from model.reports.preview import display_window, plot_comparison
    from model.weights.model_source import resolve_generator
    from model.inference.super_resolve import super_resolve
    from pipeline.io.volume_io import read_volume

    show_progress()
    scales = evaluation_scales(args.scales)
    check_adapt_steps(args.adapt)
    check_results_folder(args)
    hr = read_volume(args.input, series_uid=args.series)
    axis = hr.slice_axis(parse_axis(args.axis))
    check_scoreable(hr, scales, args.criterion, axis, args.crop)
    generator = resolve_generator(args.model, args.criterion)
    methods = generator_methods(generator, args.criterion, axis)
    if args.adapt:
        from model.training.adaptation import adapt_generator, adaptation_plan
        from pipeline.method.degradation import degrade_volume

        for scale in scales:  # refuse now, not after minutes of adapting at the scales before it
            try:
                thick = degrade_volume(hr, scale_ratio(scale)[0], args.criterion, axis)
                adaptation_plan(generator, thick, scale, args.criterion, axis)
            except InputError as error:
                raise InputError(f"x{scale_label(scale)}: {error}; drop --adapt or this scale") from None
        methods["soupgan+adapt"] = lambda lr, s: super_resolve(
            lr, adapt_generator(generator, lr, s, args.criterion, args.adapt, axis), s, args.criterion, axis)
    baseline = None
    if args.baseline:
        from model.weights.model_source import generator_path, sha256_of

        model = None if args.baseline == SHIPPED_BASELINE else args.baseline
        try:
            path = generator_path(model, args.criterion)
            baseline_generator = resolve_generator(path, args.criterion)
        except InputError as err:
            raise InputError(f"--baseline: {err}") from None
        baseline = {"model": args.baseline if model is None else os.path.basename(os.path.normpath(model)),
                    "sha256": sha256_of(path)}
        methods["baseline"] = lambda lr, s: super_resolve(lr, baseline_generator, s, args.criterion, axis)
    if args.reference:
        from model.inference.reference_model import ReferenceModel

        reference = ReferenceModel(args.reference)
        methods["reference"] = lambda lr, s: reference(lr, s, args.criterion, axis)
    rows, views = evaluate_scales(
        hr, scales, args.criterion, methods, axis, args.crop,
        on_row=lambda row: print(f"x{scale_label(row['scale'])} {row['method']:13s} PSNR {row['psnr']:6.2f} dB  "
                                 f"SSIM {row['ssim']:.4f}", flush=True),
    )
    os.makedirs(args.out, exist_ok=True)
    metrics = os.path.join(args.out, "metrics.json")
    with staged(metrics, args.force) as written, open(written, "w", encoding="utf-8") as handle:
        json.dump({"volume_id": hr.volume_id, "criterion": args.criterion, "slice_axis": axis, "crop": args.crop,
                   **({"baseline": baseline} if baseline else {}), "rows": rows}, handle, indent=2)
    title = f"{hr.volume_id} {args.criterion}" + (f", centre {args.crop}²" if args.crop else "")
    plot_metrics_vs_scale(rows, os.path.join(args.out, "metrics.png"), title, args.force)
    plot_comparison(views, display_window(hr), os.path.join(args.out, "comparison.png"), args.force)
    print(format_table(rows))
