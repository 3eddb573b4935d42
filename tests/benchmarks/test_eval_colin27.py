"""The T2-like remap `benchmarks.eval_colin27 --contrast t2-like` scores the default on (BENCHMARKS.md)."""
from __future__ import annotations

import numpy as np

from benchmarks.eval_colin27 import t2_like
from pipeline.volume import Volume


def t1_ramp() -> tuple[Volume, np.ndarray]:
    """Every T1 intensity from air to past the brightest tissue along the last axis, and those intensities as
    fractions of the volume's 99.5th percentile (the remap's unit)."""
    data = np.broadcast_to(np.linspace(0.0, 200.0, 2001, dtype=np.float32), (2, 2, 2001))
    return Volume(data, np.eye(4), "MR", "ramp"), data[0, 0] / np.percentile(data, 99.5)


def test_t2_like_orders_tissues_as_a_t2_weighted_scan_and_keeps_air_dark():
    original, fraction = t1_ramp()
    remapped = t2_like(original).data[0, 0]
    air, csf, grey, white = np.interp([0.0, 0.16, 0.45, 0.6], fraction, remapped)  # Colin27's T1 peaks
    assert air == 0.0
    assert csf > grey > white > 0.0


def test_t2_like_adds_no_edges():
    original, fraction = t1_ramp()
    remapped = t2_like(original)
    slope = np.abs(np.diff(remapped.data[0, 0] / 1000.0)) / np.diff(fraction)
    assert slope.max() <= 1.15 / 0.15 + 1e-3  # continuous: steepest at the start of the ramp up from air
    assert remapped.shape == original.shape and remapped.volume_id == original.volume_id
