"""One entry point for reading and writing volumes by path: NIfTI files or DICOM series folders."""
from __future__ import annotations

import os

from pipeline.dicom_io import is_dicom_file, read_dicom_series
from pipeline.errors import InputError, UnreadableFileError
from pipeline.nifti_io import is_nifti_path, read_nifti, write_nifti
from pipeline.volume import Volume


def read_volume(path: str | os.PathLike, series_uid: str | None = None, modality: str | None = None) -> Volume:
    """Read a `.nii`/`.nii.gz` file or a folder holding one DICOM series; bad input raises `InputError`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        volume = read_dicom_series(path, series_uid=series_uid)
    elif not os.path.exists(path):
        raise UnreadableFileError(f"{path}: no such file or folder")
    elif is_nifti_path(path):
        volume = read_nifti(path)
    elif is_dicom_file(path):
        raise InputError(f"{path}: a single DICOM file; pass the folder that holds the whole series")
    else:
        raise UnreadableFileError(f"{path}: not a .nii/.nii.gz file or a DICOM series folder")
    if modality is not None and modality != volume.modality:
        volume = Volume(volume.data, volume.affine, modality, volume.volume_id)
    return volume


def write_volume(volume: Volume, path: str | os.PathLike) -> None:
    """Write a volume as NIfTI (`.nii` or `.nii.gz`)."""
    write_nifti(volume, path)
