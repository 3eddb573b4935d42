"""One entry point for reading and writing volumes by path: NIfTI files or DICOM series folders."""
from __future__ import annotations

import os

from pipeline.io.dicom_io import is_dicom_file, read_dicom_series, read_series_encoding
from pipeline.io.encoding import Encoding
from pipeline.errors import InputError, UnreadableFileError
from pipeline.io.nifti_io import is_nifti_path, nifti_encoding, read_nifti, write_nifti
from pipeline.volume import Volume


def read_volume(path: str | os.PathLike, series_uid: str | None = None, modality: str = "unknown") -> Volume:
    """Read a `.nii`/`.nii.gz` file or a folder holding one DICOM series; bad input raises `InputError`.

    `modality` labels NIfTI input (which does not record it); DICOM takes it from the header.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return read_dicom_series(path, series_uid=series_uid)
    if not os.path.exists(path):
        raise UnreadableFileError(f"{path}: no such file or folder")
    if is_nifti_path(path):
        return read_nifti(path, modality)
    if is_dicom_file(path):
        raise InputError(f"{path}: a single DICOM file; pass the folder that holds the whole series")
    raise UnreadableFileError(f"{path}: not a .nii/.nii.gz file or a DICOM series folder")


def read_encoding(path: str | os.PathLike, series_uid: str | None = None) -> Encoding:
    """How the volume at `path` (read by `read_volume`) stores its voxels."""
    path = os.fspath(path)
    return read_series_encoding(path, series_uid) if os.path.isdir(path) else nifti_encoding(path)


def write_volume(volume: Volume, path: str | os.PathLike, encoding: Encoding | None = None,
                 replace: bool = True) -> None:
    """Write a volume as NIfTI (`.nii` or `.nii.gz`), stored as `encoding` says (default float32)."""
    write_nifti(volume, path, encoding, replace)
