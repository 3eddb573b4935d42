"""Read and write NIfTI volumes with nibabel, keeping the affine; bad files raise typed one-line errors."""
from __future__ import annotations

import gzip
import io
import os
import zlib

import nibabel as nib
import numpy as np

from pipeline.errors import InputError, UnreadableFileError, VolumeShapeError
from pipeline.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_CLASSES = {348: nib.Nifti1Image, 540: nib.Nifti2Image}


def is_nifti_path(path: str) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def nifti_from_bytes(raw: bytes, name: str = "<bytes>", modality: str = "unknown") -> Volume:
    """Parse a whole `.nii` or `.nii.gz` file held in memory (local, gs:// or s3:// alike)."""
    if not raw:
        raise UnreadableFileError(f"{name}: empty file")
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise UnreadableFileError(f"{name}: corrupt or truncated gzip stream ({err})") from None
    image_class = _HEADER_CLASSES.get(int.from_bytes(raw[:4], "little")) or _HEADER_CLASSES.get(
        int.from_bytes(raw[:4], "big")
    )
    if image_class is None:
        raise UnreadableFileError(f"{name}: not a NIfTI-1/NIfTI-2 file")
    try:
        image = image_class.from_stream(io.BytesIO(raw))
        data = np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as err:  # nibabel reports short data, bad headers, etc. with many exception types
        raise UnreadableFileError(f"{name}: unreadable NIfTI ({type(err).__name__}: {err})") from None
    return Volume(_as_3d(data, name), image.affine, modality)


def read_nifti(path: str | os.PathLike, modality: str = "unknown") -> Volume:
    """Read a local NIfTI file into a `Volume` (voxels as float32 with scl_slope/inter applied)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise UnreadableFileError(f"{path}: {err.strerror or err}") from None
    return nifti_from_bytes(raw, os.path.basename(path), modality)


def nifti_to_bytes(volume: Volume, compress: bool = True) -> bytes:
    """Serialise a volume as NIfTI-1 (float32, mm units, qform and sform both set to the affine)."""
    image = nib.Nifti1Image(volume.data, volume.affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


def write_nifti(volume: Volume, path: str | os.PathLike) -> None:
    """Write `.nii` or `.nii.gz` (by suffix) atomically: a reader never sees a half-written file."""
    path = os.fspath(path)
    if not is_nifti_path(path):
        raise InputError(f"{path}: output must end in .nii or .nii.gz")
    payload = nifti_to_bytes(volume, compress=path.lower().endswith(".gz"))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    finally:  # interrupted (Ctrl-C, a full disk): no half file under either name
        if os.path.exists(tmp):
            os.remove(tmp)


def _as_3d(data: np.ndarray, name: str) -> np.ndarray:
    """Drop trailing singleton axes (X,Y,Z,1); refuse 2D images and true 4D series."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise VolumeShapeError(f"{name}: expected a 3D volume, got {data.ndim}D data of shape {data.shape}")
    return data
