"""Write a volume as a new DICOM series: with a source series as template, a DERIVED series of the same study
(patient, study and frame of reference kept; new Series/SOP Instance UIDs); positions, orientation, spacing
and slice thickness from the affine; the template's signedness and rescale slope/intercept when the values fit
them, so CT keeps its HU scaling (else a rescale spread over int16).
The template's display window is kept. The folder appears whole or not at all (written beside it, then renamed),
created under the umask so that another user (a PACS sender) can read it.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, SecondaryCaptureImageStorage, generate_uid

from pipeline.io.dicom_io import LPS_TO_RAS, dicom_encoding, dicom_numbers
from pipeline.io.encoding import Encoding
from pipeline.errors import InputError
from pipeline.method.normalization import robust_window
from pipeline.io.staging import staged, write_series_marker
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
MIN_SLICE_NORMAL_COSINE = 0.5  # a gantry tilt of up to 60 degrees


def _storage(volume: Volume, template: pydicom.Dataset | None) -> Encoding:
    """16-bit storage: the template's signedness and rescaling, else HU as stored for CT, when the values fit
    them; else the range spread over int16 (a source whose slices rescaled differently, as PET's)."""
    candidates = []
    if template is not None:
        source = dicom_encoding(template)
        candidates.append(Encoding(np.uint16 if source.dtype.kind == "u" else np.int16, source.slope, source.intercept))
    if volume.modality == "CT":
        candidates.append(Encoding(np.int16))
    low, high = float(volume.data.min()), float(volume.data.max())
    for storage in candidates:
        can_low, can_high = storage.real_range()
        if can_low <= low and high <= can_high:
            return storage
    peak = max(abs(low), abs(high))
    return Encoding(np.int16, peak / INT16.max if peak > 0 else 1.0)


def _window(volume: Volume, template: pydicom.Dataset | None) -> dict:
    """The display window: the template's own windows (a CT's 40/400, all of them) when they are numbers, else
    the volume's robust window."""
    if template is not None:
        centers, widths = dicom_numbers(template.get("WindowCenter")), dicom_numbers(template.get("WindowWidth"))
        if centers and len(centers) == len(widths) and min(widths) > 0:
            return {"WindowCenter": centers if len(centers) > 1 else centers[0],
                    "WindowWidth": widths if len(widths) > 1 else widths[0]}
    window = robust_window(volume.data)
    return {"WindowCenter": round((window.low + window.high) / 2.0, 3),
            "WindowWidth": round(max(window.high - window.low, 1.0), 3)}


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


@dataclasses.dataclass(frozen=True)
class SliceGrid:
    """Where the slices of the new series sit, in DICOM's LPS terms."""

    origin: np.ndarray
    row_step: np.ndarray
    column_step: np.ndarray
    slice_step: np.ndarray

    @property
    def row_cosine(self) -> np.ndarray:
        return self.row_step / np.linalg.norm(self.row_step)

    @property
    def column_cosine(self) -> np.ndarray:
        return self.column_step / np.linalg.norm(self.column_step)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_cosine, self.column_cosine)

    def geometry(self, k: int, slice_thickness: float | None) -> dict:
        """The geometry attributes of slice k."""
        position = self.origin + k * self.slice_step
        step = float(np.linalg.norm(self.slice_step))
        return {
            "ImagePositionPatient": [round(float(v), 6) for v in position],
            "ImageOrientationPatient": [round(float(v), 8) for v in (*self.row_cosine, *self.column_cosine)],
            "PixelSpacing": [round(float(np.linalg.norm(self.column_step)), 6),
                             round(float(np.linalg.norm(self.row_step)), 6)],
            "SliceThickness": round(float(slice_thickness or step), 6),
            "SpacingBetweenSlices": round(step, 6),
            "SliceLocation": round(float(position @ self.normal), 6),
        }


def check_dicom_grid(affine: np.ndarray, axis: int) -> SliceGrid:
    """The grid of a series with slices along `axis`; refuses one DICOM cannot hold (callers check before compute:
    upsampling keeps the in-plane axes and the slice direction)."""
    in_plane = [a for a in range(3) if a != axis]
    lps = LPS_TO_RAS @ np.asarray(affine)[:, [*in_plane, axis, 3]]
    grid = SliceGrid(lps[:3, 3], lps[:3, 0], lps[:3, 1], lps[:3, 2])
    if abs(float(grid.row_cosine @ grid.column_cosine)) > 1e-4:
        raise InputError("the in-plane axes are not perpendicular: DICOM cannot hold this grid; write NIfTI")
    if abs(float(grid.slice_step @ grid.normal)) < MIN_SLICE_NORMAL_COSINE * np.linalg.norm(grid.slice_step):
        raise InputError("the slice axis lies almost in the image plane (sheared more than 60 degrees): DICOM cannot "
                         "hold this grid; write NIfTI")
    return grid


def write_dicom_series(volume: Volume, folder: str, template: pydicom.Dataset | None = None,
                       slice_axis: int | None = None, slice_thickness: float | None = None,
                       description: str = "soupgan super-resolution", replace: bool = True) -> str:
    """Write one file per slice along `slice_axis` (default: the volume's) into the new folder `folder`, with
    a marker listing them (what a later --force may replace); returns the new SeriesInstanceUID.
    `replace=False` keeps anything that appeared at `folder` meanwhile."""
    axis = volume.slice_axis(slice_axis)
    grid = check_dicom_grid(volume.affine, axis)
    data = np.transpose(volume.data, (*[a for a in range(3) if a != axis], axis))
    storage = _storage(volume, template)
    stored = storage.encode(data)
    base = _base_dataset(template, volume)
    base.update(_series_attributes(base, template, grid, storage, description))
    base.Rows, base.Columns = stored.shape[1], stored.shape[0]
    base.update(_window(volume, template))
    names = [f"IM{k + 1:05d}.dcm" for k in range(stored.shape[2])]
    with staged(folder, replace) as written:
        os.mkdir(written)
        for k, name in enumerate(names):
            ds = _slice_dataset(base, k + 1)
            ds.update(grid.geometry(k, slice_thickness))
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
            ds.save_as(os.path.join(written, name), enforce_file_format=True)
        write_series_marker(written, names, base.SeriesInstanceUID)
    return base.SeriesInstanceUID


def _series_attributes(base: pydicom.Dataset, template: pydicom.Dataset | None, grid: SliceGrid,
                       storage: Encoding, description: str) -> dict:
    """What every slice of the new series shares besides patient and study: identity, type, pixel format."""
    sop_class = STORAGE_CLASSES.get(str(base.get("Modality", "")), SecondaryCaptureImageStorage)
    source_description = str(template.get("SeriesDescription", "")) if template is not None else ""
    return {
        "SOPClassUID": sop_class,
        "SeriesInstanceUID": generate_uid(),
        "SeriesNumber": int(template.get("SeriesNumber", 0) or 0) + 1000 if template is not None else 1000,
        "SeriesDescription": f"{source_description} {description}".strip()[:64],
        "ImageType": ["DERIVED", "SECONDARY", "AXIAL" if abs(grid.normal[2]) > 0.9 else "OTHER"],
        "DerivationDescription": description[:1024],
        "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15,
        "PixelRepresentation": 0 if storage.dtype.kind == "u" else 1,
        "RescaleSlope": round(storage.slope, 10), "RescaleIntercept": round(storage.intercept, 6),
    }


def _slice_dataset(base: pydicom.Dataset, instance: int) -> FileDataset:
    """A new file dataset for one slice: the shared attributes, a new SOP Instance UID."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = base.SOPClassUID
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(f"IM{instance:05d}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.update(base)
    ds.SOPInstanceUID, ds.InstanceNumber = meta.MediaStorageSOPInstanceUID, instance
    return ds
