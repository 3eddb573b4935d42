"""Synthetic thin-slice volumes of random anatomy and random contrast, to train on more shapes than a few
real heads hold (SynthMorph's random label maps rendered with SynthSR-style random tissue intensities).

A volume: each of `classes` labels gets a random smooth field (noise on a coarse grid of a random spacing,
cubic-zoomed up), the voxel takes the label whose field is largest, so boundaries are smooth curved surfaces
and structures range from a few to tens of millimetres; a warped ellipsoid of "head" sits in dark air. Each
label gets a random mean and texture, then a Gaussian point-spread blur. Optional thin folded sheets (each
voxel within half a random thickness of a smooth field's zero level, inside a random region) add what blobs
lack and brains are full of: cortex- and sulcus-like ribbons a few millimetres thick that bend between slices,
the structure thick slices lose most. NumPy and SciPy only, seeded, so a
volume is reproducible from its seed on any machine (the GPU image included).
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from scipy import ndimage

from pipeline.volume import Volume


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Ranges the random anatomy and contrast are drawn from (per volume unless noted)."""

    shape: tuple[int, int, int] = (160, 160, 160)
    classes: int = 12
    feature_mm: tuple[float, float] = (4.0, 32.0)  # coarse-grid spacing per label, log-uniform: structure size
    head_fraction: tuple[float, float] = (0.7, 0.95)  # head ellipsoid diameter / field of view, per axis
    texture: float = 0.1  # per-label texture amplitude ~ U(0, texture) of the label's mean
    blur_voxels: tuple[float, float] = (0.3, 1.0)  # point-spread σ
    sheets: int = 0  # thin folded sheets laid over the labels, each a label of its own
    sheet_mm: tuple[float, float] = (1.0, 4.0)  # sheet thickness, uniform
    folding_mm: tuple[float, float] = (6.0, 24.0)  # coarse-grid spacing of a sheet's field, log-uniform: its folds

    def __post_init__(self):
        if not 2 <= self.classes + self.sheets <= 255 or self.sheets < 0 or min(self.shape) < 8:
            raise ValueError("a synthetic volume needs 2 to 255 classes and sheets together, no negative sheet "
                             "count, and 8 voxels along each axis")

    @property
    def tag(self) -> str:
        """A short name for volumes made with this config: empty for the default (the shipped weights' data),
        else a hash of the fields, so volumes of different configs never share a cache file."""
        if self == SyntheticConfig():
            return ""
        return hashlib.sha256(repr(dataclasses.astuple(self)).encode()).hexdigest()[:8]


def smooth_noise(shape: tuple[int, ...], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise on a coarse grid of ceil(n / spacing) + 1 nodes per axis, cubic-interpolated.

    Nodes sit (z − 1) / (c − 1) voxels apart, z = round(c·(n − 1) / (c − 1)) (c nodes, n voxels): the first n
    voxels of `ndimage.zoom` to z, which the shipped default's synthetic volumes were made with, interpolated
    without the z − n beyond them."""
    coarse_shape = [max(2, int(np.ceil(n / spacing)) + 1) for n in shape]
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    zoomed = [round(c * (n - 1) / (c - 1)) for n, c in zip(shape, coarse_shape)]
    step = [(c - 1) / (z - 1) for c, z in zip(coarse_shape, zoomed)]
    return ndimage.affine_transform(coarse, step, output_shape=tuple(shape), order=3, mode="mirror",
                                    output=np.float32)


def random_label_map(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Labels 1..classes inside a warped head ellipsoid, 0 (air) outside: the argmax of per-label smooth fields."""
    low, high = np.log(config.feature_mm)
    best = np.full(config.shape, -np.inf, dtype=np.float32)
    labels = np.zeros(config.shape, dtype=np.uint8)
    for label in range(1, config.classes + 1):
        field = smooth_noise(config.shape, float(np.exp(rng.uniform(low, high))), rng)
        larger = field > best
        labels[larger] = label
        np.maximum(best, field, out=best)
    head = _head_mask(config, rng)
    labels[~head] = 0
    for sheet in range(config.sheets):  # drawn after the rest: sheets=0 leaves the shipped seeds' volumes as they were
        labels[head & _sheet_mask(config, rng)] = config.classes + 1 + sheet
    return labels


def _sheet_mask(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """A folded sheet of random thickness: voxels whose first-order distance |f| / |∇f| to the zero level of a
    smooth field f is under half the thickness, kept where a second, coarser field exceeds a random level."""
    low, high = np.log(config.folding_mm)
    field = smooth_noise(config.shape, float(np.exp(rng.uniform(low, high))), rng)
    gradient = np.sqrt(sum(g ** 2 for g in np.gradient(field)))
    distance = np.abs(field) / np.maximum(gradient, 1e-6)
    region = smooth_noise(config.shape, 32.0, rng) > rng.uniform(-0.5, 1.0)
    return region & (distance < 0.5 * rng.uniform(*config.sheet_mm))


def _head_mask(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """An ellipsoid of random diameters centred in the field of view, its surface pushed in and out smoothly."""
    radii = [0.5 * n * rng.uniform(*config.head_fraction) for n in config.shape]
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2.0) / r for n, r in zip(config.shape, radii)],
                        indexing="ij", sparse=True)
    radius = np.sqrt(sum(g ** 2 for g in grids))
    wobble = 0.08 * smooth_noise(config.shape, min(config.shape) / 4.0, rng)
    return radius + wobble < 1.0


def render(labels: np.ndarray, config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Intensities for a label map: a random mean per label (air stays 0), smooth per-label texture, blur."""
    count = int(labels.max())
    means = np.concatenate([[0.0], rng.uniform(0.05, 1.0, count)]).astype(np.float32)
    amplitudes = np.concatenate([[0.0], rng.uniform(0.0, config.texture, count)]).astype(np.float32)
    texture = smooth_noise(labels.shape, float(rng.uniform(2.0, 6.0)), rng)
    image = means[labels] * (1.0 + amplitudes[labels] * texture)
    image = ndimage.gaussian_filter(image, float(rng.uniform(*config.blur_voxels)), output=np.float32)
    return np.maximum(image, 0.0) * 1000.0


def synthetic_volume(seed: int, config: SyntheticConfig = SyntheticConfig()) -> Volume:
    """The synthetic 1 mm isotropic volume of `seed` (MR-like arbitrary units, air 0, brightest ~1000)."""
    rng = np.random.default_rng([seed, 0x5EED])
    labels = random_label_map(config, rng)
    return Volume(render(labels, config, rng), np.eye(4), modality="MR")
