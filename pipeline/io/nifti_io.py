"""Read and write NIfTI volumes with nibabel, keeping the affine; bad files raise typed one-line errors."""
from __future__ import annotations

import gzip
import io
import os
import zlib

import nibabel as nib
import numpy as np

from pipeline.io.encoding import Encoding
from pipeline.errors import InputError, UnreadableFileError, VolumeShapeError
from pipeline.io.staging import staged
from pipeline.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_CLASSES = {348: nib.Nifti1Image, 540: nib.Nifti2Image}
_HEADER_READ = 544  # a NIfTI-2 header and its extension flag


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
    image_class = _image_class(raw, name)
    try:
        with nib.imageglobals.LoggingOutputSuppressor():  # header fixes are not the user's error line
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


def nifti_encoding(path: str | os.PathLike) -> Encoding:
    """How a local NIfTI file stores its voxels: data type and scl_slope/scl_inter, from its header alone."""
    path, name = os.fspath(path), os.path.basename(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_READ)
        if head[:2] == _GZIP_MAGIC:
            with gzip.open(path, "rb") as handle:
                head = handle.read(_HEADER_READ)
    except (EOFError, OSError, zlib.error) as err:
        raise UnreadableFileError(f"{name}: unreadable NIfTI header ({err})") from None
    image_class = _image_class(head, name)
    try:
        with nib.imageglobals.LoggingOutputSuppressor():
            header = image_class.header_class.from_fileobj(io.BytesIO(head), check=False)
            slope, intercept = header.get_slope_inter()
        dtype = header.get_data_dtype()
    except Exception as err:  # nibabel's many exception types for a bad header
        raise UnreadableFileError(f"{name}: unreadable NIfTI header ({type(err).__name__}: {err})") from None
    return Encoding(dtype, 1.0 if slope is None else slope, 0.0 if intercept is None else intercept)


def _image_class(raw: bytes, name: str):
    """Nifti1Image or Nifti2Image by the header size field (either byte order); anything else is refused."""
    image_class = _HEADER_CLASSES.get(int.from_bytes(raw[:4], "little")) or _HEADER_CLASSES.get(
        int.from_bytes(raw[:4], "big"))
    if image_class is None:
        raise UnreadableFileError(f"{name}: not a NIfTI-1/NIfTI-2 file")
    return image_class


def nifti_to_bytes(volume: Volume, compress: bool = True, encoding: Encoding | None = None) -> bytes:
    """Serialise a volume as NIfTI-1 (mm units, qform and sform both set to the affine), stored as `encoding`
    says (default float32)."""
    encoding = encoding or Encoding()
    image = nib.Nifti1Image(encoding.encode(volume.data), volume.affine)
    if encoding.is_integer and (encoding.slope, encoding.intercept) != (1.0, 0.0):
        image.header.set_slope_inter(encoding.slope, encoding.intercept)
    image.header.set_xyzt_units("mm")
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


def write_nifti(volume: Volume, path: str | os.PathLike, encoding: Encoding | None = None,
                replace: bool = True) -> None:
    """Write `.nii` or `.nii.gz` (by suffix) atomically: a reader never sees a half-written file
    (`replace=False`: keep a file that appeared at `path` meanwhile)."""
    path = os.fspath(path)
    if not is_nifti_path(path):
        raise InputError(f"{path}: output must end in .nii or .nii.gz")
    payload = nifti_to_bytes(volume, compress=path.lower().endswith(".gz"), encoding=encoding)
    with staged(path, replace) as written, open(written, "wb") as handle:
        handle.write(payload)


def _as_3d(data: np.ndarray, name: str) -> np.ndarray:
    """Drop trailing singleton axes (X,Y,Z,1); refuse 2D images and true 4D series."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise VolumeShapeError(f"{name}: expected a 3D volume, got {data.ndim}D data of shape {data.shape}")
    return data
