"""`soupgan evaluate`'s protocol: degrade a thin-slice volume by each scale, bring it back with each method,
and score RMSE/PSNR/SSIM against the original's thin slices on the upsampled grid (paper Fig. 5; at a
fractional scale p/q, the volume degraded by p against its thin slices q apart: `thin_reference`), the in-plane
detail of the slices it generated (`pipeline.metrics.slice_detail`: the worst phase's sharpness against the
truth's, its spread over the phases, which is banding, and the Laplacian correlation), with each method's voxel
throughput.

The metrics cover the thin slices the upsampled grid holds (the first ones along the slice axis), optionally
an in-plane centre crop; PSNR and SSIM use the target's intensity range. Every output is clipped as `upsample`
clips it (`pipeline.io.encoding.in_input_range`: never below zero for a scan with no negative voxel, never below
−1024 HU for CT); it is not rounded to the input's stored type, which `upsample` also does.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from model.reports.preview import centre_views, planes_along
from pipeline.method.degradation import degrade_volume, thin_reference
from pipeline.io.encoding import in_input_range
from pipeline.method.geometry import degraded_length, upsampled_length
from pipeline.method.interpolation import upsample_volume
from pipeline.method.normalization import robust_window
from pipeline.method.slice_flow import flow_upsample_volume
from pipeline.config import THIN_TO_THIN, scale_ratio
from pipeline.data.patches import FOREGROUND_LEVEL
from pipeline.metrics import psnr, rmse, slice_detail, ssim
from pipeline.volume import Volume

if TYPE_CHECKING:
    from model.networks.generator import SoupGenerator

Method = Callable[[Volume, float], Volume]


def generator_methods(generator: SoupGenerator, criterion: str, axis: int | None = None) -> dict[str, Method]:
    """The rows every evaluation of a generator starts with: tricubic; for a flow-input generator its very input,
    the flow-guided interpolation (with thin-to-thick's slab means restored for a `consistent_input` one), so the
    row shows what the network adds; and the generator."""
    from model.inference.super_resolve import super_resolve  # loads Keras, which scoring alone does not need

    def flow_guided(lr: Volume, scale: float) -> Volume:
        return flow_upsample_volume(lr, scale, criterion, axis, consistent=generator.consistent_input)

    return {
        "tricubic": lambda lr, s: upsample_volume(lr, s, criterion, axis),
        **({"flow-guided": flow_guided} if generator.flow_input else {}),
        "soupgan": lambda lr, s: super_resolve(lr, generator, s, criterion, axis),
    }


def centre_crop(data: np.ndarray, axis: int, size: int | None) -> np.ndarray:
    """The in-plane centre `size`×`size` of a volume (all of it along `axis`); None keeps everything."""
    if size is None:
        return data
    index = []
    for a, n in enumerate(data.shape):
        start = max((n - size) // 2, 0)
        index.append(slice(None) if a == axis else slice(start, start + size))
    return data[tuple(index)]


def evaluate_scales(hr: Volume, scales: Sequence[float], criterion: str, methods: dict[str, Method],
                    axis: int | None = None, crop: int | None = None,
                    on_row: Callable[[dict], None] | None = None) -> tuple[list[dict], dict]:
    """(one row per scale and method, `views` for `model.reports.preview.plot_comparison`: {scale: {"truth" and
    each method: {plane name: the centre plane}}}, for the two planes that hold the slice axis)."""
    axis = hr.slice_axis(axis)
    planes = planes_along(hr, axis)
    rows, views = [], {}
    for scale in scales:
        p, q = scale_ratio(scale)
        lr = degrade_volume(hr, p, criterion, axis)
        target = None
        views[scale] = {}
        for name, method in methods.items():
            start = time.perf_counter()
            output = in_input_range(method(lr, scale), lr)
            seconds = time.perf_counter() - start
            if target is None:
                thin = thin_reference(hr.data, q, criterion, axis)
                target = centre_crop(np.take(thin, np.arange(output.shape[axis]), axis=axis), axis, crop)
                tissue = robust_window(target).normalize(target) > FOREGROUND_LEVEL  # as the shards job's filter
                views[scale]["truth"] = centre_views(output.with_data(target), planes)  # on the thin grid
            result = centre_crop(output.data, axis, crop)
            row = {"scale": scale, "method": name, **score(result, target),
                   **slice_detail(result, target, tissue, axis, p, generated_phases(criterion, p)),
                   "seconds": seconds, "mvoxel_per_s": output.data.size / seconds / 1e6}
            rows.append(row)
            views[scale][name] = centre_views(output.with_data(result), planes)
            if on_row is not None:
                on_row(row)
    return rows, views


def score(result: np.ndarray, target: np.ndarray) -> dict:
    """RMSE, and PSNR and SSIM against the target's intensity range."""
    data_range = float(np.ptp(target))
    return {"rmse": rmse(result, target), "psnr": psnr(result, target, data_range),
            "ssim": ssim(result, target, data_range)}


def generated_phases(criterion: str, period: int) -> list[int]:
    """The slice phases (k mod the period: the scale s, or p of s = p/q) a method computes rather than keeps:
    thin-to-thin keeps thick slice j as thin slice j·s (phase 0; at p/q, every q-th thick slice lands on the
    thin grid, every p-th thin slice); every other criterion's thin slices are all computed. At p/q, phase r
    lies (r·q mod p)/p of a thick spacing past a thick slice, so the phases are not in order of distance."""
    return list(range(1, period)) if criterion == THIN_TO_THIN else list(range(period))


def scored_shape(shape: Sequence[int], scale: float, criterion: str, axis: int,
                 crop: int | None) -> tuple[int, ...]:
    """The shape of the thin slices `evaluate_scales` scores at one scale (raises if too few thick slices)."""
    scored = list(shape)
    scored[axis] = upsampled_length(degraded_length(shape[axis], scale_ratio(scale)[0], criterion), scale, criterion)
    if crop is not None:
        scored = [n if a == axis else min(n, crop) for a, n in enumerate(scored)]
    return tuple(scored)


def format_table(rows: list[dict]) -> str:
    lines = [f"{'scale':>5}  {'method':<10} {'PSNR dB':>8} {'SSIM':>7} {'RMSE':>10} {'sharp':>6} {'banding':>7} "
             f"{'LapCorr':>7} {'Mvoxel/s':>9}"]
    for row in rows:
        lines.append(f"{'x' + format(row['scale'], 'g'):>5}  {row['method']:<10} {row['psnr']:8.2f} "
                     f"{row['ssim']:7.4f} {row['rmse']:10.3f} {row['sharpness_worst']:6.3f} "
                     f"{row['sharpness_spread']:7.3f} {row['laplacian_correlation']:7.3f} {row['mvoxel_per_s']:9.3f}")
    return "\n".join(lines)
