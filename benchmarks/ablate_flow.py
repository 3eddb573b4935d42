"""The flow-guided input's warp, by ablation: today's warp (both thick slices moved along the forward flow, scaled
by distance) against Super SloMo's intermediate flows from the forward and the backward flow
(`pipeline.method.slice_flow`, `warp="intermediate"`), as the input alone and under the shipped generator, which
was trained on today's warp. Thin-to-thin, through `soupgan evaluate`'s protocol, on the scans of
`benchmarks/peer_saint.py` (Colin27's 128² centre crop, nibabel's EPI frame and 2 mm T1, whole).

    python -m benchmarks.ablate_flow [--scans colin27,nibabel-epi,nibabel-t1] [--scales 2,3,4,5,6]

For the intermediate rows `slice_flow.flow_upsample` is replaced while they run, so the flow row and
`super_resolve` make their input as they always do, with the other warp.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

from benchmarks.peer_saint import SCANS, markdown_table
from model.reports.evaluation import evaluate_scales, generator_methods
from model.weights.model_source import resolve_generator
from pipeline.config import THIN_TO_THIN, parse_scales
from pipeline.io.nifti_io import read_nifti
from pipeline.method import slice_flow
from soupgan.recipes.public_scans import scan_path


@contextlib.contextmanager
def flow_inputs_warped(warp: str):
    """Every flow-guided input made inside the block uses `warp`."""
    original = slice_flow.flow_upsample
    slice_flow.flow_upsample = functools.partial(original, warp=warp)
    try:
        yield
    finally:
        slice_flow.flow_upsample = original


def on_intermediate_warp(method):
    """`method` with its flow-guided input made by the intermediate warp."""
    def run(lr, s):
        with flow_inputs_warped("intermediate"):
            return method(lr, s)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", default=",".join(SCANS), help=f"comma-separated, of {', '.join(SCANS)}")
    parser.add_argument("--scales", type=parse_scales, default=parse_scales("2,3,4,5,6"))
    parser.add_argument("--model", help="a flow-input run folder or generator .keras (default: the shipped weights)")
    parser.add_argument("--out", default="benchmarks/results/flow-warp")
    args = parser.parse_args()
    generator = resolve_generator(args.model, THIN_TO_THIN)
    if not generator.flow_input:
        parser.error("the generator does not take the flow-guided input")
    os.makedirs(args.out, exist_ok=True)
    tables = []
    for scan in args.scans.split(","):
        hr = read_nifti(scan_path(scan)[0], "MR")
        axis = hr.slice_axis()
        today = generator_methods(generator, THIN_TO_THIN, axis)
        methods = {"flow-guided": today["flow-guided"],
                   "flow-guided, intermediate warp": on_intermediate_warp(today["flow-guided"]),
                   "soupgan": today["soupgan"],
                   "soupgan on the intermediate warp": on_intermediate_warp(today["soupgan"])}
        rows, _ = evaluate_scales(hr, args.scales, THIN_TO_THIN, methods, crop=SCANS[scan],
                                  on_row=lambda row: print(json.dumps(row), flush=True))
        with open(os.path.join(args.out, f"{scan}.json"), "w", encoding="utf-8") as handle:
            json.dump({"scan": scan, "crop": SCANS[scan], "rows": rows}, handle, indent=2)
        tables.append(markdown_table(scan, rows))
        print(tables[-1], flush=True)
    print("\nPSNR dB / SSIM / worst-phase sharpness / Laplacian correlation\n\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
