"""Writes synthetic single-frame DICOM series with pydicom, for geometry and error tests."""
from __future__ import annotations

import os

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def write_series(
    folder: str,
    volume: np.ndarray,
    row_cosine=(1.0, 0.0, 0.0),
    column_cosine=(0.0, 1.0, 0.0),
    pixel_spacing=(0.8, 0.7),
    slice_step=2.5,
    origin=(-100.0, -80.0, 30.0),
    slope=1.0,
    intercept=-1024.0,
    series_uid: str | None = None,
    positions: list | None = None,
) -> list[str]:
    """Write `volume[i, j, k]` (i along a row, j down a column, k along the normal) as one file per slice.

    Stored pixels are (volume - intercept) / slope as int16. File names are shuffled against positions.
    Returns the file paths in slice order.
    """
    os.makedirs(folder, exist_ok=True)
    row_cosine, column_cosine = np.asarray(row_cosine, float), np.asarray(column_cosine, float)
    normal = np.cross(row_cosine, column_cosine)
    series_uid = series_uid or generate_uid()
    n = volume.shape[2]
    if positions is None:
        positions = [np.asarray(origin, float) + k * slice_step * normal for k in range(n)]
    paths = []
    order = np.random.default_rng(1).permutation(n)
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = os.path.join(folder, f"IM{order[k]:04d}.dcm")
        ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName = "Doe^Jane"
        ds.StudyInstanceUID = "1.2.3.4"
        ds.SeriesInstanceUID = series_uid
        ds.InstanceNumber = int(order[k]) + 1
        ds.SliceLocation = float(order[k])  # deliberately meaningless: ordering must not use it
        ds.ImagePositionPatient = [float(v) for v in positions[k]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_cosine, *column_cosine)]
        ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
        ds.SliceThickness = float(slice_step)
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        stored = np.round((volume[:, :, k].T - intercept) / slope).astype(np.int16)
        ds.PixelData = stored.tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
