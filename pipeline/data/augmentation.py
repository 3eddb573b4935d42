"""Random intensity augmentation of a thin-slice (HR) block *before* it is degraded, so every training pair
stays exact: the thick input is made from the augmented target by the same degradation and spline.

The point is to generalise across contrasts, scanners and modalities from a few T1 scans (as SynthSR and
SMORE do): a random piecewise-linear remapping of the normalised intensities (tissues swap brightness, as
between T1, T2 and CT windows; the background stays dark), a gamma, a smooth multiplicative bias field and
Gaussian noise. The window the model sees is recomputed from the volume's histogram under the remapping,
as inference computes it from the thick volume.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.method.normalization import HIGH_PERCENTILE, LOW_PERCENTILE, IntensityWindow

HISTOGRAM_BINS = 512


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Probabilities and ranges of each random transform (all off with `AugmentationConfig.none()`)."""

    remap_probability: float = 0.4  # random tissue contrast
    remap_knots: int = 8
    gamma_probability: float = 0.5
    log_gamma_range: float = 0.4  # γ = exp(U(−r, r))
    bias_probability: float = 0.5
    bias_amplitude: float = 0.25  # field = exp(U(−a, a) per basis term), linear + quadratic in position
    noise_probability: float = 0.4
    noise_max: float = 0.03  # σ ~ U(0, max) of the normalised intensity range

    @classmethod
    def none(cls) -> "AugmentationConfig":
        return cls(remap_probability=0.0, gamma_probability=0.0, bias_probability=0.0, noise_probability=0.0)


@dataclasses.dataclass(frozen=True)
class Histogram:
    """A normalised volume's intensity histogram: enough to find percentiles after any remapping."""

    centres: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, data: np.ndarray, bins: int = HISTOGRAM_BINS) -> "Histogram":
        low, high = float(np.min(data)), float(np.max(data))
        counts, edges = np.histogram(data, bins=bins, range=(low, high if high > low else low + 1.0))
        return cls(0.5 * (edges[:-1] + edges[1:]), counts.astype(np.float64))

    def window_after(self, mapping) -> IntensityWindow:
        """[p0.5, p99.5] of the volume once `mapping` is applied to every voxel."""
        values = mapping(self.centres)
        order = np.argsort(values)
        cumulative = np.cumsum(self.counts[order]) / self.counts.sum()
        low = values[order][np.searchsorted(cumulative, LOW_PERCENTILE / 100.0)]
        high = values[order][min(np.searchsorted(cumulative, HIGH_PERCENTILE / 100.0), len(values) - 1)]
        return IntensityWindow(float(low), float(high))


@dataclasses.dataclass(frozen=True)
class IntensityMapping:
    """x → remap(x)^γ, on normalised intensities (0 = background, 1 = bright tissue); odd-symmetric below 0."""

    knots_x: np.ndarray
    knots_y: np.ndarray
    gamma: float

    def __call__(self, data: np.ndarray) -> np.ndarray:
        mapped = np.interp(data, self.knots_x, self.knots_y, left=None, right=None)
        beyond = data > self.knots_x[-1]  # keep the slope of the last segment above the window
        slope = (self.knots_y[-1] - self.knots_y[-2]) / (self.knots_x[-1] - self.knots_x[-2])
        mapped = np.where(beyond, self.knots_y[-1] + slope * (data - self.knots_x[-1]), mapped)
        mapped = np.where(data < 0, data, mapped)  # below the window: unchanged (air, noise floor)
        if self.gamma != 1.0:
            mapped = np.sign(mapped) * np.abs(mapped) ** self.gamma
        return mapped.astype(np.float32)


def random_mapping(rng: np.random.Generator, config: AugmentationConfig) -> IntensityMapping:
    """Identity, a gamma, a random contrast, or both, drawn with the config's probabilities."""
    knots_x = np.linspace(0.0, 1.0, config.remap_knots + 1)
    knots_y = knots_x.copy()
    if rng.random() < config.remap_probability:
        knots_y = np.concatenate([[0.0], rng.uniform(0.05, 1.0, config.remap_knots)])
        knots_y[1] = min(knots_y[1], 0.2)  # the faintest signal stays near the background
        knots_y /= knots_y.max()
    gamma = float(np.exp(rng.uniform(-config.log_gamma_range, config.log_gamma_range))) \
        if rng.random() < config.gamma_probability else 1.0
    return IntensityMapping(knots_x, knots_y, gamma)


def bias_field(rng: np.random.Generator, shape: tuple[int, ...], origin: tuple[int, ...],
               volume_shape: tuple[int, ...], amplitude: float) -> np.ndarray:
    """A smooth multiplicative field over a block at `origin` of a volume: exp of a random polynomial of degree
    ≤ 2 in the volume's normalised coordinates (so neighbouring blocks of one draw would agree)."""
    grids = np.meshgrid(*[(np.arange(o, o + n) / max(v - 1, 1)) * 2.0 - 1.0
                          for n, o, v in zip(shape, origin, volume_shape)], indexing="ij", sparse=True)
    log_field = np.zeros(shape, dtype=np.float32)
    for grid in grids:
        log_field = log_field + rng.uniform(-amplitude, amplitude) * grid
        log_field = log_field + rng.uniform(-amplitude, amplitude) * (grid ** 2 - 1.0 / 3.0)
    return np.exp(log_field).astype(np.float32)


def augment_block(block: np.ndarray, origin: tuple[int, ...], volume_shape: tuple[int, ...], histogram: Histogram,
                  rng: np.random.Generator, config: AugmentationConfig) -> np.ndarray:
    """One random draw of every transform on a normalised HR block, renormalised to the window the whole
    augmented volume would have ([p0.5, p99.5] → [0, 1])."""
    mapping = random_mapping(rng, config)
    window = histogram.window_after(mapping)
    out = mapping(block)
    if rng.random() < config.bias_probability:
        out = out * bias_field(rng, block.shape, origin, volume_shape, config.bias_amplitude)
    out = window.normalize(out)
    if rng.random() < config.noise_probability:
        out = out + rng.normal(0.0, rng.uniform(0.0, config.noise_max), block.shape).astype(np.float32)
    return out.astype(np.float32)
