"""How a scan's voxels are stored (type, scaling, display window), and outputs put back in those terms.

Interpolation and networks overshoot: cubic ringing gives negative values next to a non-negative MR
scan's edges, and a uint8 scan would come back as float32, 4× larger. `in_input_range` clips a result to
the range its input can hold: never below zero for a scan with no negative voxel, never below −1024 HU
(or the scan's own minimum) for CT, never outside its integer type; `Encoding.encode` stores it in the
input's type and scaling.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.volume import Volume

FLOAT32 = np.dtype(np.float32)
CT_AIR_HU = -1024.0
DTYPE_CHOICES = ("input", "float32")
ENCODE_CHUNK_VOXELS = 1 << 22


@dataclasses.dataclass(frozen=True)
class Encoding:
    """Stored type and real = stored·slope + intercept; `window` is a DICOM (center, width) when known."""

    dtype: np.dtype = FLOAT32
    slope: float = 1.0
    intercept: float = 0.0
    window: tuple[float, float] | None = None

    def __post_init__(self):
        dtype = np.dtype(self.dtype).newbyteorder("=")
        if dtype.kind not in "iuf":
            dtype = FLOAT32
        slope = float(self.slope) if np.isfinite(self.slope) and self.slope != 0 else 1.0
        intercept = float(self.intercept) if np.isfinite(self.intercept) else 0.0
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "slope", slope)
        object.__setattr__(self, "intercept", intercept)

    @property
    def is_integer(self) -> bool:
        return self.dtype.kind in "iu"

    def real_range(self) -> tuple[float, float]:
        """The real values the stored type can hold (±inf for floating point)."""
        if not self.is_integer:
            return -np.inf, np.inf
        info = np.iinfo(self.dtype)
        ends = sorted((info.min * self.slope + self.intercept, info.max * self.slope + self.intercept))
        return float(ends[0]), float(ends[1])

    def encode(self, data: np.ndarray) -> np.ndarray:
        """Real values → stored values (rounded and saturated for an integer type), a few million voxels at a
        time so that a large volume needs no float64 copy."""
        data = np.asarray(data)
        if not self.is_integer:
            return data.astype(self.dtype, copy=False)
        info = np.iinfo(self.dtype)
        stored = np.empty(data.shape, self.dtype)
        step = max(1, ENCODE_CHUNK_VOXELS // max(1, data[:1].size))
        for start in range(0, data.shape[0], step):
            part = (data[start : start + step].astype(np.float64) - self.intercept) / self.slope
            stored[start : start + step] = np.clip(np.round(part, out=part), info.min, info.max, out=part)
        return stored

    def written_as(self, choice: str) -> "Encoding":
        """--dtype: `input` keeps this encoding, `float32` stores real values as float32."""
        if choice not in DTYPE_CHOICES:
            raise ValueError(f"dtype must be one of {DTYPE_CHOICES}, got {choice!r}")
        return self if choice == "input" else dataclasses.replace(self, dtype=FLOAT32, slope=1.0, intercept=0.0)


def value_bounds(source: Volume, encoding: Encoding | None = None) -> tuple[float, float]:
    """The range an output of `source` may take: its type's, floored at 0 for a scan with no negative voxel
    and at −1024 HU (or its minimum, if lower) for CT."""
    low, high = (encoding or Encoding()).real_range()
    minimum = float(source.data.min())
    if minimum >= 0:
        low = max(low, 0.0)
    elif source.modality == "CT":
        low = max(low, min(minimum, CT_AIR_HU))
    return low, high


def in_input_range(result: Volume, source: Volume, encoding: Encoding | None = None) -> Volume:
    """`result` with every voxel inside `value_bounds(source, encoding)`, clipped in place (a result is its
    caller's own new volume; a whole-volume copy would cost as much memory again)."""
    low, high = value_bounds(source, encoding)
    if float(result.data.min()) >= low and float(result.data.max()) <= high:
        return result
    if not result.data.flags.writeable:
        return result.with_data(np.clip(result.data, low, high))
    np.clip(result.data, low, high, out=result.data)
    return result
