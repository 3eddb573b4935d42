"""`soupgan upsample` against the SOUP-GAN authors' released model: voxel rate and peak memory, side by side.

Inputs (x4, thin-to-thin): the whole Colin27 T1 with every 4th slice kept (181x217x46, 1x1x4 mm), and a
512x512x100 CT-like volume (0.7x0.7x5 mm, HU). Each method runs in its own process, timed from process
start to the written NIfTI (imports and model loading included), with the process's peak RSS:
- soupgan: the console script, shipped default weights, default tiles (and, with --model NAME=GENERATOR,
  the same for other generators, e.g. a candidate default; with --tile D,H,W, other tile cores);
- authors: their package as its README runs it, `KevinSR.SOUP_GAN(thick, 4, prep_type=1)` from the KevinSR
  0.1.20 sdist: scipy's cubic zoom of the whole volume, then one `predict` of their Thin-to-thin model on it,
  under Keras 2 (`tf-keras`, the `bench` extra), which their `keras.models.load_model` of a SavedModel needs.
  One call holds the whole volume's activations (4.7 GB for Colin27), so it runs only where its estimated
  peak fits in this machine's memory.
Every process gets the project's TensorFlow settings (`soupgan.tensorflow_env`: oneDNN kernels on, which
also speeds up theirs); --also-onednn-off adds each method once more with them off (TensorFlow's own default
on CPUs without AVX-512). Runs alternate between methods; the median of --repeats runs is reported.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

from benchmarks.data import authors_model_path, authors_package_path, colin27_path
from soupgan.tensorflow_env import apply_tensorflow_defaults

SCALE = 4
AUTHORS_BYTES_PER_VOXEL = 700  # their one call's peak RSS per output voxel (4.7 GB for Colin27's 7.2 M)
AUTHORS_SCRIPT = """
import os, sys
import nibabel as nib
import numpy as np
source, out, package, workdir, scale = sys.argv[1:]
sys.path.insert(0, package)
from KevinSR import SOUP_GAN
os.chdir(workdir)  # SOUP_GAN looks for its models in the working directory
image = nib.load(source)
thin = SOUP_GAN(image.get_fdata(dtype=np.float32), float(scale), prep_type=1)
nib.save(nib.Nifti1Image(thin.astype(np.float32), image.affine), out)
"""


def authors_command(source: str, out: str, folder: str) -> list[str]:
    """Their README's call in a child process with Keras 2, run where their models are found: a working
    directory holding Thin-to-thin (and an empty Thick-to-thin, which it would otherwise download unused)."""
    if importlib.util.find_spec("tf_keras") is None:
        raise SystemExit("the authors' package needs Keras 2: pip install -e '.[bench]' (or run with --no-authors)")
    workdir = os.path.join(folder, "authors")
    if not os.path.isdir(workdir):
        os.makedirs(os.path.join(workdir, "Thick-to-thin"))
        os.symlink(authors_model_path(), os.path.join(workdir, "Thin-to-thin"))
    return ["env", "TF_USE_LEGACY_KERAS=1", sys.executable, "-c", AUTHORS_SCRIPT, source, out,
            authors_package_path(), workdir, str(SCALE)]


def fits_in_memory(output_voxels: int) -> bool:
    """Whether the authors' one call on a volume of this many output voxels fits in 80% of physical memory."""
    return output_voxels * AUTHORS_BYTES_PER_VOXEL < 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def make_inputs(folder: str) -> dict[str, str]:
    from pipeline.method.degradation import degrade_volume
    from pipeline.io.nifti_io import read_nifti, write_nifti
    from pipeline.volume import Volume

    colin = degrade_volume(read_nifti(colin27_path(), "MR"), SCALE, "thin-to-thin")
    paths = {"colin27": os.path.join(folder, "colin27_x4.nii.gz"), "ct512": os.path.join(folder, "ct512.nii.gz")}
    write_nifti(colin, paths["colin27"])
    rng = np.random.default_rng(0)
    grid = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in (512, 512, 100)], indexing="ij")
    body = (grid[0] / 0.8) ** 2 + (grid[1] / 0.7) ** 2 < 1
    texture = 60 * np.sin(9 * grid[0]) * np.cos(7 * grid[1]) * np.sin(5 * grid[2])
    ct = np.where(body, 40 + texture, -1000) + rng.normal(0, 10, body.shape)
    ct[(grid[0] ** 2 + grid[1] ** 2 < 0.05)] = 900  # a bone-like core
    write_nifti(Volume(ct.astype(np.float32), np.diag([0.7, 0.7, 5.0, 1.0]), "CT"), paths["ct512"])
    return paths


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds from process start, peak RSS in GB) of one child process run to completion."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True).stdout
    seconds, kilobytes = out.split()
    return float(seconds), int(kilobytes) / 1e6


def named_model(text: str) -> tuple[str, str]:
    """"grown=runs/x/last_generator.keras" → ("grown", "runs/x/last_generator.keras")."""
    name, _, path = text.partition("=")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=GENERATOR")
    return name, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inputs", default="colin27,ct512")
    parser.add_argument("--no-authors", action="store_true")
    parser.add_argument("--model", action="append", default=[], type=named_model, metavar="NAME=GENERATOR",
                        help="also time `soupgan upsample --model GENERATOR` as 'soupgan NAME'; repeatable")
    parser.add_argument("--tile", action="append", default=[], metavar="D,H,W",
                        help="also time `soupgan upsample --tile D,H,W` as 'soupgan tile D,H,W'; repeatable")
    parser.add_argument("--also-onednn-off", action="store_true",
                        help="also time every method with TF_ENABLE_ONEDNN_OPTS=0")
    args = parser.parse_args()
    apply_tensorflow_defaults()
    soupgan = shutil.which("soupgan", path=os.path.dirname(sys.executable)) or "soupgan"
    folder = tempfile.mkdtemp(prefix="bench-upsample-")
    paths = make_inputs(folder)
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "scale": SCALE}
    for name in args.inputs.split(","):
        source = paths[name]
        out = os.path.join(folder, "out.nii.gz")
        methods = {"soupgan": [soupgan, "upsample", source, out, "--scale", str(SCALE), "--force"]}
        for model_name, generator in args.model:
            methods[f"soupgan {model_name}"] = [*methods["soupgan"], "--model", generator]
        for tile in args.tile:
            methods[f"soupgan tile {tile}"] = [*methods["soupgan"], "--tile", tile]
        expected_voxels = int(np.prod(nib.load(source).shape)) * SCALE
        if not args.no_authors and fits_in_memory(expected_voxels):
            methods["authors"] = authors_command(source, out, folder)
        elif not args.no_authors:
            print(f"{name}: the authors' one call would need ~{expected_voxels * AUTHORS_BYTES_PER_VOXEL / 1e9:.0f} GB; "
                  "not run", flush=True)
        if args.also_onednn_off:
            methods.update({f"{method}, oneDNN off": ["env", "TF_ENABLE_ONEDNN_OPTS=0", *command]
                            for method, command in list(methods.items())})
        runs = {method: [] for method in methods}
        voxels = {}  # output voxels of each method (theirs: scipy's zoom makes 4n slices, ours 4(n-1)+1)
        for _ in range(args.repeats):
            for method, command in methods.items():
                runs[method].append(measure(command))
                voxels[method] = int(np.prod(nib.load(out).shape))
                print(name, method, runs[method][-1], flush=True)
        report[name] = {"input_shape": list(nib.load(source).shape)}
        for method, values in runs.items():
            seconds = statistics.median(v[0] for v in values)
            report[name][method] = {"seconds": round(seconds, 1), "output_voxels": voxels[method],
                                    "mvoxel_per_s": round(voxels[method] / seconds / 1e6, 3),
                                    "peak_rss_gb": round(max(v[1] for v in values), 2),
                                    "runs_s": [round(v[0], 1) for v in values]}
        if "authors" in runs:
            for method in runs:
                if not method.startswith("authors"):
                    authors = "authors, oneDNN off" if method.endswith("oneDNN off") else "authors"
                    report[name][method]["rate_vs_authors"] = round(report[name][method]["mvoxel_per_s"]
                                                                    / report[name][authors]["mvoxel_per_s"], 2)
    shutil.rmtree(folder)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
