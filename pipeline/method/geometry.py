"""Where slices sit: the LR/HR slice grids of each criterion and the affines that keep world geometry exact.

Conventions (positions in units of LR slice index along the slice axis):
- thin-to-thin and gaussian: LR slice k *is* HR slice k*s; upsampling n LR slices gives (n-1)*s+1 HR
  slices at x_j = j/s, so every original slice stays exactly where it was and nothing is extrapolated.
- thin-to-thick: LR slice k is the mean of HR slices k*s .. k*s+s-1; upsampling n LR slices gives n*s
  thin slices at x_j = (j - (s-1)/2)/s, which tile each thick slab.
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.config import THIN_TO_THICK, check_criterion
from pipeline.errors import VolumeShapeError

_EPS = 1e-9


def first_position(scale: float, criterion: str) -> float:
    """LR-index coordinate of the first upsampled slice."""
    check_criterion(criterion)
    return -(scale - 1.0) / (2.0 * scale) if criterion == THIN_TO_THICK else 0.0


def upsampled_length(n_lr: int, scale: float, criterion: str) -> int:
    """Number of thin slices produced from n_lr thick slices (scale may be fractional)."""
    check_criterion(criterion)
    if n_lr < 2:
        raise VolumeShapeError(f"need at least 2 slices along the slice axis to interpolate, got {n_lr}")
    if criterion == THIN_TO_THICK:
        return int(math.floor(n_lr * scale + _EPS))
    return int(math.floor((n_lr - 1) * scale + _EPS)) + 1


def upsampled_positions(n_lr: int, scale: float, criterion: str) -> np.ndarray:
    """LR-index coordinates x_j of every upsampled slice."""
    length = upsampled_length(n_lr, scale, criterion)
    return first_position(scale, criterion) + np.arange(length, dtype=np.float64) / scale


def degraded_length(n_hr: int, scale: int, criterion: str) -> int:
    """Number of LR slices that degradation by an integer scale makes from n_hr HR slices."""
    check_criterion(criterion)
    return n_hr // scale if criterion == THIN_TO_THICK else -(-n_hr // scale)


def degraded_affine(affine: np.ndarray, axis: int, scale: int, criterion: str) -> np.ndarray:
    """Affine of the LR volume: s times the step, first slice at the centre of the first slab (thin-to-thick)."""
    lr = np.array(affine, dtype=np.float64)
    step = lr[:3, axis].copy()
    lr[:3, axis] = step * scale
    if check_criterion(criterion) == THIN_TO_THICK:
        lr[:3, 3] += step * (scale - 1) / 2.0
    return lr


def upsampled_affine(affine: np.ndarray, axis: int, scale: float, criterion: str) -> np.ndarray:
    """Affine of the upsampled volume: thin slice j sits at LR coordinate x_j (see module docstring)."""
    hr = np.array(affine, dtype=np.float64)
    step = hr[:3, axis].copy()
    hr[:3, 3] += step * first_position(scale, criterion)
    hr[:3, axis] = step / scale
    return hr
