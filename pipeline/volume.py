"""The `Volume` type shared by every stage: a 3D array, its RAS+ mm affine, a modality and a hashed id."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from pipeline.errors import NonFiniteVoxelsError, VolumeShapeError

MODALITIES = ("MR", "CT", "unknown")
_ID_HEX_CHARS = 16
THIN_AXIS_TOLERANCE = 1.2


def hashed_id(*parts: str | bytes) -> str:
    """A stable 16-hex-digit id from identifying parts (a SeriesInstanceUID, file content, ...).

    Records and logs carry only this hash, never a patient name or a source path.
    """
    digest = hashlib.blake2b(digest_size=_ID_HEX_CHARS // 2, person=b"soupgan-vol-id")
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def content_id(data: np.ndarray, affine: np.ndarray) -> str:
    """Hashed id of a volume's voxels and geometry: the same scan copied twice gets the same id."""
    return hashed_id(
        b"content",
        str(data.shape).encode(),
        np.ascontiguousarray(data, dtype=np.float32).tobytes(),
        np.round(np.asarray(affine, dtype=np.float64), 4).tobytes(),
    )


@dataclasses.dataclass(frozen=True)
class Volume:
    """A 3D scalar volume in world space.

    `data[i, j, k]` sits at world position `affine @ [i, j, k, 1]` (NIfTI RAS+ millimetres).
    Intensities are raw: MRI arbitrary units or CT Hounsfield units.
    """

    data: np.ndarray
    affine: np.ndarray
    modality: str = "unknown"
    volume_id: str = ""

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim != 3:
            raise VolumeShapeError(f"expected a 3D volume, got a {data.ndim}D array of shape {data.shape}")
        if min(data.shape) < 2:
            raise VolumeShapeError(f"expected a 3D volume, got shape {data.shape} (a single slice is an image)")
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(data.size - np.count_nonzero(finite))
            raise NonFiniteVoxelsError(f"{bad} of {data.size} voxels are NaN or infinite")
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise VolumeShapeError("affine must be a finite, invertible 4x4 matrix")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "affine", affine)
        if not self.volume_id:
            object.__setattr__(self, "volume_id", content_id(data, affine))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each array axis (column norms of the affine)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def slice_axis(self, override: int | None = None) -> int:
        """The array axis with the largest spacing; among equal spacings (within 1%) the last one."""
        if override is not None:
            if override not in (0, 1, 2):
                raise ValueError(f"slice axis must be 0, 1 or 2, got {override}")
            return override
        spacing = self.spacing
        return int(max(i for i in range(3) if spacing[i] >= 0.99 * spacing.max()))

    def clear_thick_axis(self) -> int | None:
        """The axis whose spacing is clearly the largest (over 20% above every other), else None: a scan that
        is isotropic, or thick along two axes, names no slice axis by itself."""
        spacing = self.spacing
        thickest = int(np.argmax(spacing))
        others = np.delete(spacing, thickest)
        return thickest if spacing[thickest] > THIN_AXIS_TOLERANCE * others.max() else None

    def thin_axes(self) -> tuple[int, ...]:
        """The axes a volume can be degraded along for training: all three for an isotropic scan, the in-plane
        ones of a thick-slice scan (axes within 20% of the finest spacing)."""
        spacing = self.spacing
        return tuple(a for a in range(3) if spacing[a] <= THIN_AXIS_TOLERANCE * spacing.min())

    def with_data(self, data: np.ndarray, affine: np.ndarray | None = None) -> "Volume":
        """A new volume of the same scan (same modality and id) with new voxels and optionally new geometry."""
        return Volume(data, self.affine if affine is None else affine, self.modality, self.volume_id)
