"""Simulated slice-axis degradation of a thin-slice (HR) volume by an integer factor s (SOUP-GAN, Sec. 2), and the
pair of a fractional factor p/q made from the slices a scan has: degraded by p, against its thin slices at q."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.config import GAUSSIAN, THIN_TO_THICK, THIN_TO_THIN, check_criterion
from pipeline.errors import InputError, VolumeShapeError
from pipeline.method.geometry import degraded_affine, degraded_length
from pipeline.volume import Volume


def default_sigma(scale: int) -> float:
    """Gaussian σ (in HR slices) half-way to thin-to-thick: half the std of an s-slice boxcar, s/(2·√12)."""
    return scale / (2.0 * np.sqrt(12.0))


def degrade(data: np.ndarray, scale: int, criterion: str, axis: int, sigma: float | None = None) -> np.ndarray:
    """LR array along `axis`.

    thin-to-thick: boxcar FIR b = 1/s (partial-volume averaging over s slices), then every s-th sample,
    so LR slice k = mean(HR[k*s : k*s+s]) and a trailing partial slab is dropped;
    thin-to-thin: every s-th slice (HR[::s]); gaussian: low-pass with σ (HR slices), then HR[::s].
    """
    check_criterion(criterion)
    if int(scale) != scale or scale < 2:
        raise InputError(f"degradation needs an integer scale >= 2, got {scale}")
    scale = int(scale)
    n_hr = data.shape[axis]
    n_lr = degraded_length(n_hr, scale, criterion)
    if n_lr < 2:
        raise VolumeShapeError(f"{n_hr} slices are too few to degrade by {scale} ({criterion} leaves {n_lr})")
    data = np.asarray(data, dtype=np.float32)
    if criterion == THIN_TO_THIN:
        return np.take(data, np.arange(0, n_hr, scale), axis=axis)
    if criterion == GAUSSIAN:
        sigma = default_sigma(scale) if sigma is None else float(sigma)
        smoothed = ndimage.gaussian_filter1d(data, sigma, axis=axis, mode="nearest") if sigma > 0 else data
        return np.take(smoothed, np.arange(0, n_hr, scale), axis=axis)
    slabs = np.moveaxis(data, axis, 0)[: n_lr * scale]
    means = slabs.reshape(n_lr, scale, *slabs.shape[1:]).mean(axis=1, dtype=np.float64)
    return np.moveaxis(means.astype(np.float32), 0, axis)


def thin_reference(data: np.ndarray, q: int, criterion: str, axis: int) -> np.ndarray:
    """The thin slices that a scale p/q's upsampled grid holds (`pipeline.config.scale_ratio`; the target of its
    pairs and what evaluate scores against): the volume itself (q = 1), every q-th slice (thin-to-thin,
    gaussian: thin slices q apart), or the means of q slices (thin-to-thick: thin slices that tile the thick
    slabs, each q slices thick)."""
    data = np.asarray(data, dtype=np.float32)
    if q == 1:
        return data
    if check_criterion(criterion) != THIN_TO_THICK:
        return np.take(data, np.arange(0, data.shape[axis], q), axis=axis)
    return degrade(data, q, THIN_TO_THICK, axis)


def degrade_volume(volume: Volume, scale: int, criterion: str, axis: int | None = None, sigma: float | None = None) -> Volume:
    """Degrade a volume along its slice axis and give the LR volume its true geometry."""
    axis = volume.slice_axis(axis)
    low = degrade(volume.data, scale, criterion, axis, sigma)
    return volume.with_data(low, degraded_affine(volume.affine, axis, scale, criterion))

