"""Run SAINT (py-SAINT 1.7.0; Peng et al., CVPR 2020) on one thick-slice volume, on CPU, through its package's
own README stages: nii2pt → Stage 1 on the 'sag' and the 'cor' view → comb_cor_sag → Stage 2 fusion.

Runs with SAINT's own environment's Python (`python -m benchmarks.peer_saint --setup` makes it), never ours: it
imports nothing from soupgan. `benchmarks.peer_saint` calls it once per volume and scale (SAINT's Stage 2 runs
once per process).

Input: an .npy of thick slices along its last axis, already in SAINT's intensity range (it casts to int32 and
clips every stage's output to [-1024, 4000]). SAINT reads one NIfTI on the thin grid and takes every s-th slice
itself, so the thick slices go into a carrier volume of (n−1)·s+1 slices (the slices between are never read).
Output: float32 .npy of its n·s thin slices: slice k·s+j is the thin position k·s+j; the last s−1 lie past the
last thick slice.

Three fixes for today's libraries, applied at run time (the installed package is not edited, its method not
touched): scikit-image renamed `compare_psnr` (imported, used only in training); `torchvision.transforms` is
imported and unused (an empty module stands in, so torchvision and its CUDA torch are not needed); the
EDSR-era multiprocess `MSDataLoader` imports torch internals removed since 0.4 (a single-process DataLoader with
its signature takes its place, appending the scale index 0 to each batch as its worker loop did).
"""
import argparse
import os
import pickle
import shutil
import sys
import time
import types

import numpy as np


def apply_fixes():
    """The three import-time fixes; returns torch."""
    import skimage.measure
    import skimage.metrics
    import torch
    from torch.utils.data import DataLoader
    from torch.utils.data.dataloader import default_collate

    skimage.measure.compare_psnr = skimage.metrics.peak_signal_noise_ratio
    if "torchvision" not in sys.modules:
        torchvision = types.ModuleType("torchvision")
        torchvision.transforms = types.ModuleType("torchvision.transforms")
        sys.modules.update({"torchvision": torchvision, "torchvision.transforms": torchvision.transforms})

    class MSDataLoader(DataLoader):
        def __init__(self, args, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                     collate_fn=default_collate, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None):
            super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                             batch_sampler=batch_sampler, num_workers=0, collate_fn=collate_fn, drop_last=drop_last)

        def __iter__(self):
            for batch in super().__iter__():
                yield list(batch) + [0]

    for stage in ("STAGE1", "STAGE2"):
        loader = types.ModuleType(f"py_SAINT.{stage}.dataloader")
        loader.MSDataLoader, loader.default_collate = MSDataLoader, default_collate
        sys.modules[loader.__name__] = loader
    return torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", required=True, help="thick slices .npy, slice axis last, in SAINT's range")
    parser.add_argument("--scale", required=True, type=int, choices=(2, 3, 4, 5, 6))
    parser.add_argument("--out", required=True, help="SAINT's thin slices .npy (float32, n·s slices)")
    parser.add_argument("--workdir", required=True, help="scratch folder for the package's files (replaced)")
    parser.add_argument("--spacing", type=float, nargs=2, metavar=("IN_PLANE", "THIN"), required=True,
                        help="mm, written into the carrier's header, which SAINT reads as a network input")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import SimpleITK as sitk

    thick = np.load(args.lr)
    s = args.scale
    carrier = np.repeat(np.round(thick), s, axis=2)[..., :(thick.shape[2] - 1) * s + 1]
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    nifti, hr = os.path.join(work, "nii"), os.path.join(work, "Stage1_Input", "TEST", "HR")
    for folder in (nifti, hr):
        os.makedirs(folder)
    image = sitk.GetImageFromArray(np.ascontiguousarray(carrier.transpose(2, 0, 1)).astype(np.float32))
    image.SetSpacing((args.spacing[0], args.spacing[0], args.spacing[1]))
    sitk.WriteImage(image, os.path.join(nifti, "volume.nii.gz"))

    torch = apply_fixes()
    torch.set_num_threads(args.threads)
    sys.argv = [sys.argv[0], "--cpu", "--n_threads", "0"]  # SAINT's option parser reads sys.argv
    from py_SAINT.STAGE1 import interpolation, nii2pickle
    from py_SAINT.STAGE1.process import cor_sag_comb_test
    from py_SAINT.STAGE2 import fuse

    start = time.perf_counter()
    nii2pickle.nii2pt(nifti, hr)
    views = os.path.join(work, "Stage1_output_sag_cor")
    for view in ("sag", "cor"):
        interpolation.get_Stage1_result(scale=str(s), save=views, dir_data=os.path.join(work, "Stage1_Input"),
                                        n_colors=3, n_GPUs=1, rgb_range=4000, view=view, gpu="")
    combined = os.path.join(work, "combine_cor_sag_out")
    cor_sag_comb_test.comb_cor_sag(files_dir=hr, input_sag_cor_dir=os.path.join(views, "results", "raw"),
                                   out_dir=os.path.join(combined, "TEST"), scale=s)
    fused = os.path.join(work, "out_fuse")
    fuse.get_Stage2_result(save=fused, dir_data=combined, n_GPUs=1, rgb_range=4000, gpu="")
    with open(os.path.join(fused, "results", "raw", "volume_x1_SR.pt"), "rb") as handle:
        thin = pickle.load(handle)
    np.save(args.out, thin.astype(np.float32))
    print(f"SAINT_SECONDS {time.perf_counter() - start:.2f}", flush=True)


if __name__ == "__main__":
    main()
