"""SAINT (py-SAINT 1.7.0; Peng et al., CVPR 2020) beside tricubic, the flow-guided interpolation, soupgan and the
SOUP-GAN authors' model, thin-to-thin, through `soupgan evaluate`'s protocol (`model.reports.evaluation`).

SAINT is PyTorch: it runs in its own environment (`--setup` makes it: CPU torch, SAINT's pinned libraries) as its
package intends, one call of its README's stages on the whole degraded volume per scale
(`benchmarks/saint_driver.py`, which names its three fixes for today's libraries). Two things SAINT takes that
soupgan does not:
- intensities in CT's range (it casts to integers and clips to [−1024, 4000]): an MRI is mapped so that its
  99.9th percentile sits at 1000, and mapped back; a scan in Hounsfield units goes in as it is;
- the voxel spacing from the header, as a network input. Its weights were trained on sub-millimetre CT; on a
  2 mm in-plane scan it fails. `--nominal-in-plane MM` adds a row of SAINT told the in-plane spacing is MM
  (the slice spacing kept), its best setting on such scans; the better SAINT row is the bar.

Scans (the protocol of BENCHMARKS.md): Colin27 (128² in-plane centre crop scored), nibabel's EPI frame and its
2 mm T1 (whole). Per scan: `<scan>.json`, `<scan>_metrics.png`, `<scan>_comparison.png` in --out, then one
Markdown table of PSNR / SSIM / worst-phase sharpness / Laplacian correlation.

    python -m benchmarks.peer_saint --setup [--torch-wheel torch-2.13.0+cpu-....whl]
    python -m benchmarks.peer_saint --nominal-in-plane 1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

from benchmarks.data import CACHE, authors_model_path
from model.inference.reference_model import ReferenceModel
from model.reports.evaluation import evaluate_scales, generator_methods
from model.reports.figures import plot_metrics_vs_scale
from model.reports.preview import display_window, looks_like_hounsfield, plot_comparison
from model.weights.model_source import resolve_generator
from pipeline.config import THIN_TO_THIN, parse_scales
from pipeline.io.nifti_io import read_nifti
from pipeline.method.geometry import upsampled_affine, upsampled_length
from pipeline.volume import Volume
from soupgan.recipes.public_scans import scan_path

ENVIRONMENT = os.path.join(os.path.dirname(CACHE), "saint-env")
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "saint_driver.py")
TORCH = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_DEPENDENCIES = ("filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec", "setuptools")
SAINT_PACKAGES = ("numpy==2.4.6", "scipy==1.17.1", "scikit-image==0.26.0", "SimpleITK==2.5.7",
                  "matplotlib==3.11.2", "tqdm==4.70.1")
MRI_LEVEL = 1000.0  # where an MRI's 99.9th percentile goes in SAINT's integer CT range
SCANS = {"colin27": 128, "nibabel-epi": None, "nibabel-t1": None}  # pinned public scans: the in-plane crop scored


def in_plane_spacing(volume: Volume, axis: int) -> float:
    """The mean spacing, in mm, of the two axes other than the slice axis."""
    return float(np.mean(np.delete(volume.spacing, axis)))


def outside_environment() -> dict:
    """This process's environment variables without PYTHONPATH: SAINT's Python sees its own packages only."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def setup_environment(environment: str, torch_wheel: str | None) -> None:
    """SAINT's own virtual environment: CPU torch (from `torch_wheel`, else PyTorch's CPU index), py-SAINT 1.7.0
    (it declares no dependencies) and the libraries its inference imports, pinned."""
    subprocess.run([sys.executable, "-m", "venv", environment], check=True)
    pip = [os.path.join(environment, "bin", "python"), "-m", "pip", "install", "-q"]
    torch = [torch_wheel] if torch_wheel else [TORCH, "--index-url", TORCH_CPU_INDEX]
    for packages in (TORCH_DEPENDENCIES, ["--no-deps", *torch, "py-SAINT==1.7.0"], SAINT_PACKAGES):
        subprocess.run(pip + list(packages), check=True, env=outside_environment())


class SaintPeer:
    """`peer(lr, scale)` → thin-to-thin Volume on `upsample`'s grid: SAINT run by its driver in its environment
    on the whole thick volume (`in_plane_mm`: the in-plane spacing to tell it instead of the header's)."""

    def __init__(self, environment: str, axis: int, in_plane_mm: float | None = None):
        self.python = os.path.join(environment, "bin", "python")
        if not os.path.exists(self.python):
            raise SystemExit(f"no SAINT environment at {environment}: run python -m benchmarks.peer_saint --setup")
        self.axis, self.in_plane_mm = axis, in_plane_mm

    def __call__(self, lr: Volume, scale: float) -> Volume:
        thick = np.moveaxis(lr.data, self.axis, -1)
        gain = 1.0 if looks_like_hounsfield(lr) else MRI_LEVEL / max(float(np.percentile(thick, 99.9)), 1e-6)
        in_plane = self.in_plane_mm or in_plane_spacing(lr, self.axis)
        with tempfile.TemporaryDirectory(prefix="saint-") as work:
            source, result = os.path.join(work, "thick.npy"), os.path.join(work, "thin.npy")
            np.save(source, (thick * gain).astype(np.float32))
            run = subprocess.run([self.python, DRIVER, "--lr", source, "--scale", str(int(scale)), "--out", result,
                                  "--workdir", os.path.join(work, "saint"), "--spacing", str(in_plane),
                                  str(lr.spacing[self.axis] / scale)], capture_output=True, text=True,
                                 env=outside_environment())
            if run.returncode != 0:
                raise RuntimeError(f"SAINT failed at x{scale}: {run.stderr.strip()[-500:]}")
            thin = np.load(result)[..., :upsampled_length(thick.shape[-1], scale, THIN_TO_THIN)] / gain
        return Volume(np.moveaxis(thin, -1, self.axis), upsampled_affine(lr.affine, self.axis, scale, THIN_TO_THIN),
                      lr.modality, lr.volume_id)


def methods_for(hr: Volume, args: argparse.Namespace, generator, authors) -> dict:
    """Every method scored on one scan, SAINT last (as its header says, and at a nominal spacing if asked)."""
    axis = hr.slice_axis()
    methods = generator_methods(generator, THIN_TO_THIN, axis)
    if authors is not None:
        methods["authors"] = lambda lr, s: authors(lr, s, THIN_TO_THIN, axis)
    methods["SAINT"] = SaintPeer(args.env, axis)
    if args.nominal_in_plane and abs(in_plane_spacing(hr, axis) - args.nominal_in_plane) > 0.05:
        methods[f"SAINT@{args.nominal_in_plane:g}mm"] = SaintPeer(args.env, axis, args.nominal_in_plane)
    return methods


def markdown_table(scan: str, rows: list[dict]) -> str:
    """One line per method: PSNR / SSIM / worst-phase sharpness / LapCorr at each scale."""
    scales = sorted({row["scale"] for row in rows})
    lines = [f"| {scan} | " + " | ".join(f"x{s}" for s in scales) + " |", "| --- |" + " --- |" * len(scales)]
    for method in dict.fromkeys(row["method"] for row in rows):
        cells = {row["scale"]: row for row in rows if row["method"] == method}
        lines.append(f"| {method} | " + " | ".join(
            f"{cells[s]['psnr']:.2f} / {cells[s]['ssim']:.4f} / {cells[s]['sharpness_worst']:.2f} / "
            f"{cells[s]['laplacian_correlation']:.2f}" for s in scales) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="make SAINT's environment, then stop")
    parser.add_argument("--torch-wheel", help="with --setup: a local CPU torch wheel instead of PyTorch's CPU index")
    parser.add_argument("--env", default=ENVIRONMENT, help=f"SAINT's environment (default {ENVIRONMENT})")
    parser.add_argument("--scans", default=",".join(SCANS), help=f"comma-separated, of {', '.join(SCANS)}")
    parser.add_argument("--scales", type=parse_scales, default=parse_scales("2,3,4,5,6"))
    parser.add_argument("--nominal-in-plane", type=float, metavar="MM",
                        help="also run SAINT told the in-plane spacing is MM where the header differs")
    parser.add_argument("--model", help="run folder or generator .keras (default: the shipped weights)")
    parser.add_argument("--no-authors", action="store_true", help="skip the authors' model")
    parser.add_argument("--out", default="benchmarks/results/saint")
    args = parser.parse_args()
    if args.setup:
        setup_environment(args.env, args.torch_wheel)
        return
    generator = resolve_generator(args.model, THIN_TO_THIN)
    authors = None if args.no_authors else ReferenceModel(authors_model_path())
    os.makedirs(args.out, exist_ok=True)
    tables = []
    for scan in args.scans.split(","):
        crop = SCANS[scan]
        hr = read_nifti(scan_path(scan)[0], "MR")
        rows, views = evaluate_scales(hr, args.scales, THIN_TO_THIN, methods_for(hr, args, generator, authors),
                                      crop=crop, on_row=lambda row: print(json.dumps(row), flush=True))
        with open(os.path.join(args.out, f"{scan}.json"), "w", encoding="utf-8") as handle:
            json.dump({"scan": scan, "crop": crop, "rows": rows}, handle, indent=2)
        plot_metrics_vs_scale(rows, os.path.join(args.out, f"{scan}_metrics.png"), f"{scan} thin-to-thin")
        plot_comparison(views, display_window(hr), os.path.join(args.out, f"{scan}_comparison.png"))
        tables.append(markdown_table(scan, rows))
        print(tables[-1], flush=True)
    print("\nPSNR dB / SSIM / worst-phase sharpness / Laplacian correlation\n\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
