"""Write a volume as a new DICOM series: with a source series as template, a DERIVED series of the same study
(patient, study and frame of reference kept; new Series/SOP Instance UIDs); positions, orientation, spacing
and slice thickness from the affine; the template's rescale slope/intercept, so CT keeps its HU scaling.
The folder appears whole or not at all (written beside it, then renamed).
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, SecondaryCaptureImageStorage, generate_uid

from pipeline.dicom_io import LPS_TO_RAS
from pipeline.errors import InputError
from pipeline.normalization import robust_window
from pipeline.volume import Volume

# Patient, study, equipment and frame-of-reference attributes a derived series shares with its source.
SHARED_ATTRIBUTES = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID", "StudyDate",
    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "Modality", "Manufacturer", "BodyPartExamined", "PatientPosition",
    "SpecificCharacterSet",
)
STORAGE_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}
INT16 = np.iinfo(np.int16)


def read_template(folder: str, series_uid: str | None = None) -> pydicom.Dataset | None:
    """The header of one image of the series in `folder` (None when it holds no DICOM image)."""
    for root, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            try:
                dataset = pydicom.dcmread(os.path.join(root, name), stop_before_pixels=True)
            except Exception:
                continue
            if "ImagePositionPatient" in dataset and (series_uid is None or dataset.SeriesInstanceUID == series_uid):
                return dataset
    return None


def _rescale(volume: Volume, template: pydicom.Dataset | None) -> tuple[float, float]:
    """(slope, intercept): the template's, else HU as stored for CT, else the range spread over int16."""
    if template is not None and "RescaleSlope" in template:
        return float(template.RescaleSlope), float(template.get("RescaleIntercept", 0.0))
    if volume.modality == "CT":
        return 1.0, 0.0
    peak = float(np.abs(volume.data).max())
    return (peak / INT16.max if peak > 0 else 1.0), 0.0


def _base_dataset(template: pydicom.Dataset | None, volume: Volume) -> pydicom.Dataset:
    base = pydicom.Dataset()
    if template is not None:
        for keyword in SHARED_ATTRIBUTES:
            if keyword in template:
                setattr(base, keyword, template.data_element(keyword).value)
    else:
        base.PatientName, base.PatientID = "", ""
        base.StudyInstanceUID, base.FrameOfReferenceUID = generate_uid(), generate_uid()
        base.Modality = volume.modality if volume.modality in STORAGE_CLASSES else "OT"
    return base


def write_dicom_series(volume: Volume, folder: str, template: pydicom.Dataset | None = None,
                       slice_axis: int | None = None, slice_thickness: float | None = None,
                       description: str = "soupgan super-resolution") -> str:
    """Write one file per slice along `slice_axis` (default: the volume's) into the new folder `folder`;
    returns the new SeriesInstanceUID."""
    axis = volume.slice_axis(slice_axis)
    in_plane = [a for a in range(3) if a != axis]
    data = np.transpose(volume.data, (*in_plane, axis))
    lps = LPS_TO_RAS @ volume.affine[:, [*in_plane, axis, 3]]
    row_step, column_step, slice_step = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    row_cosine, column_cosine = row_step / np.linalg.norm(row_step), column_step / np.linalg.norm(column_step)
    if abs(float(row_cosine @ column_cosine)) > 1e-4:
        raise InputError("the in-plane axes are not perpendicular: DICOM cannot hold this grid; write NIfTI")
    normal = np.cross(row_cosine, column_cosine)
    slope, intercept = _rescale(volume, template)
    stored = np.round((data - intercept) / slope)
    if stored.min() < INT16.min or stored.max() > INT16.max:
        raise InputError(f"intensities {data.min():g}..{data.max():g} do not fit the source's 16-bit rescaling")
    window = robust_window(volume.data)
    base = _base_dataset(template, volume)
    series_uid = generate_uid()
    sop_class = STORAGE_CLASSES.get(str(base.get("Modality", "")), SecondaryCaptureImageStorage)
    series_number = int(template.get("SeriesNumber", 0) or 0) + 1000 if template is not None else 1000
    source_description = str(template.get("SeriesDescription", "")) if template is not None else ""

    parent = os.path.dirname(os.path.abspath(folder))
    staging = tempfile.mkdtemp(prefix=".soupgan-", dir=parent)
    try:
        for k in range(data.shape[2]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = sop_class
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset(f"IM{k + 1:05d}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
            ds.update(base)
            ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
            ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, series_number, k + 1
            ds.SeriesDescription = f"{source_description} {description}".strip()[:64]
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if abs(normal[2]) > 0.9 else "OTHER"]
            ds.DerivationDescription = description[:1024]
            position = lps[:3, 3] + k * slice_step
            ds.ImagePositionPatient = [round(float(v), 6) for v in position]
            ds.ImageOrientationPatient = [round(float(v), 8) for v in (*row_cosine, *column_cosine)]
            ds.PixelSpacing = [round(float(np.linalg.norm(column_step)), 6), round(float(np.linalg.norm(row_step)), 6)]
            ds.SliceThickness = round(float(slice_thickness or np.linalg.norm(slice_step)), 6)
            ds.SpacingBetweenSlices = round(float(np.linalg.norm(slice_step)), 6)
            ds.SliceLocation = round(float(position @ normal), 6)
            ds.Rows, ds.Columns = data.shape[1], data.shape[0]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope, ds.RescaleIntercept = round(slope, 10), round(intercept, 6)
            ds.WindowCenter = round((window.low + window.high) / 2.0, 3)
            ds.WindowWidth = round(max(window.high - window.low, 1.0), 3)
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T.astype(np.int16)).tobytes()
            ds.save_as(os.path.join(staging, f"IM{k + 1:05d}.dcm"), enforce_file_format=True)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return series_uid
