"""Assemble one DICOM series into a `Volume`: slices ordered by position along the slice normal, HU/rescale
applied, RAS+ affine from ImageOrientationPatient/PixelSpacing/ImagePositionPatient; irregular series refused."""
from __future__ import annotations

import io
import os
from collections import defaultdict
from typing import Iterable, Sequence, Union

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from pipeline.io.encoding import Encoding
from pipeline.errors import (
    DicomSeriesError,
    DuplicateSliceError,
    MissingSliceError,
    MixedOrientationError,
    MultipleSeriesError,
    UnevenSpacingError,
    UnreadableFileError,
    VolumeShapeError,
)
from pipeline.volume import MODALITIES, Volume, hashed_id

# A source is a local path, or (name, bytes) as read through a remote file system.
DicomSource = Union[str, os.PathLike, "tuple[str, bytes]"]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ORIENTATION_TOLERANCE = 1e-4  # direction cosines
SPACING_TOLERANCE_MM = 0.02
SPACING_TOLERANCE_FRACTION = 0.01


def read_dicom_series(
    source: str | os.PathLike | Sequence[DicomSource], series_uid: str | None = None, label: str | None = None
) -> Volume:
    """Read the one image series in a folder (searched recursively) or in a list of files.

    Files that are not DICOM images (DICOMDIR, reports, stray text files) are ignored. A folder with
    several series raises `MultipleSeriesError` unless `series_uid` picks one. `label` names the series
    in error messages (default: the folder's name).
    """
    is_folder = isinstance(source, (str, os.PathLike))
    sources = _list_folder(source) if is_folder else list(source)
    label = label or (os.path.basename(os.fspath(source)) if is_folder else "DICOM files")
    series = defaultdict(list)
    for name, dataset in _read_images(sources):
        series[str(dataset.get("SeriesInstanceUID", ""))].append((name, dataset))
    if not series:
        raise UnreadableFileError(f"{label}: no DICOM images found")
    if series_uid is not None:
        if series_uid not in series:
            raise DicomSeriesError(f"{label}: no series with SeriesInstanceUID {series_uid}")
        slices = series[series_uid]
    elif len(series) > 1:
        sizes = ", ".join(f"{uid} ({len(items)} files)" for uid, items in sorted(series.items()))
        raise MultipleSeriesError(f"{label}: holds {len(series)} DICOM series, choose one: {sizes}")
    else:
        slices = next(iter(series.values()))
    return _assemble(label, slices)


def _series_headers(folder: str, series_uid: str | None = None):
    """The headers (no pixels) of the images of the series in `folder`, as `read_dicom_series` takes them."""
    for path in _list_folder(folder):
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, IsADirectoryError):
            continue  # not DICOM, as when the series was read
        except Exception as err:
            raise UnreadableFileError(f"{os.path.basename(path)}: unreadable DICOM ({err})") from None
        if "ImagePositionPatient" in dataset and series_uid in (None, str(dataset.get("SeriesInstanceUID", ""))):
            yield dataset


def read_template(folder: str, series_uid: str | None = None) -> pydicom.Dataset:
    """The header of one image of the series in `folder`: what a derived series takes its study from."""
    for dataset in _series_headers(folder, series_uid):
        return dataset
    raise UnreadableFileError(f"{os.path.basename(folder)}: no DICOM image to take the study from")


def read_series_encoding(folder: str, series_uid: str | None = None) -> Encoding:
    """How the series in `folder` stores its pixels: its slices' shared type and rescale (and the first one's
    window), or float32 when slices rescale differently (as PET does, slice by slice)."""
    encodings = [dicom_encoding(dataset) for dataset in _series_headers(folder, series_uid)]
    if not encodings:
        raise UnreadableFileError(f"{os.path.basename(folder)}: no DICOM image found")
    first = encodings[0]
    if any((e.dtype, e.slope, e.intercept) != (first.dtype, first.slope, first.intercept) for e in encodings[1:]):
        return Encoding(np.float32, window=first.window)
    return first


def dicom_encoding(dataset: pydicom.Dataset) -> Encoding:
    """How a DICOM image stores its pixels: signedness and bits, Rescale Slope/Intercept, display window."""
    bits = int(dataset.get("BitsAllocated", 16) or 16)
    signed = int(dataset.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{max(bits, 8) // 8}") if bits in (8, 16, 32) else np.dtype(np.float32)
    return Encoding(dtype, _number(dataset.get("RescaleSlope"), 1.0), _number(dataset.get("RescaleIntercept"), 0.0),
                    _window(dataset))


def dicom_numbers(value) -> list[float]:
    """A DICOM decimal string or several as finite floats; [] when absent or any is unusable."""
    values = list(value) if isinstance(value, (pydicom.multival.MultiValue, list, tuple)) else [value]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return []
    return numbers if numbers and all(np.isfinite(numbers)) else []


def _number(value, default: float) -> float:
    """The first of a DICOM element's numbers; `default` when absent or unusable."""
    numbers = dicom_numbers(value)
    return numbers[0] if numbers else default


def _window(dataset: pydicom.Dataset) -> tuple[float, float] | None:
    """The first (center, width) display window, when it is usable."""
    centers, widths = dicom_numbers(dataset.get("WindowCenter")), dicom_numbers(dataset.get("WindowWidth"))
    return (centers[0], widths[0]) if centers and widths and widths[0] > 0 else None


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True for a file with the DICOM Part 10 preamble ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _list_folder(folder: str | os.PathLike) -> list[str]:
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise UnreadableFileError(f"{folder}: not a folder of DICOM files")
    return sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)


def _read_images(sources: Iterable[DicomSource]):
    """Yield (name, dataset) for every readable DICOM image among the sources."""
    for source in sources:
        if isinstance(source, tuple):
            name, payload = source
            handle = io.BytesIO(payload)
        else:
            name = handle = os.fspath(source)
        try:
            dataset = pydicom.dcmread(handle)
        except (InvalidDicomError, IsADirectoryError):
            continue  # not DICOM: DICOMDIR siblings, READMEs, thumbnails
        except Exception as err:
            raise UnreadableFileError(f"{os.path.basename(name)}: unreadable DICOM ({err})") from None
        if "PixelData" in dataset:
            yield os.path.basename(name), dataset


GEOMETRY_TAGS = {"ImagePositionPatient": 3, "ImageOrientationPatient": 6, "PixelSpacing": 2}
COSINE_TOLERANCE = 1e-3


def _slice_geometry(label: str, name: str, dataset) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(position, orientation, (rows, columns, row spacing, column spacing)) of one slice, each checked: finite
    numbers, two perpendicular unit direction cosines, positive sizes and spacings."""
    missing = [tag for tag in (*GEOMETRY_TAGS, "Rows", "Columns") if tag not in dataset]
    if missing:
        raise DicomSeriesError(f"{label}: {name} lacks {', '.join(missing)}; cannot place it in 3D")
    if max(dicom_numbers(dataset.get("NumberOfFrames", 1)) or [1]) > 1:
        raise DicomSeriesError(f"{label}: {name} is a multi-frame (enhanced) image; only one frame per file is supported")
    values = {}
    for keyword, count in GEOMETRY_TAGS.items():
        values[keyword] = np.asarray(dicom_numbers(dataset.get(keyword)), dtype=np.float64)
        if values[keyword].size != count:
            raise DicomSeriesError(f"{label}: {name} {keyword} is not {count} finite numbers")
    orientation, spacing = values["ImageOrientationPatient"], values["PixelSpacing"]
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    if (abs(np.linalg.norm(row_cosine) - 1) > COSINE_TOLERANCE or abs(np.linalg.norm(column_cosine) - 1) > COSINE_TOLERANCE
            or abs(float(row_cosine @ column_cosine)) > COSINE_TOLERANCE):
        raise DicomSeriesError(f"{label}: {name} ImageOrientationPatient is not two perpendicular unit vectors")
    rows, columns = int(dataset.Rows or 0), int(dataset.Columns or 0)
    if rows < 1 or columns < 1 or spacing.min() <= 0:
        raise DicomSeriesError(f"{label}: {name} has {rows}x{columns} pixels of {spacing[0]:g}x{spacing[1]:g} mm")
    return values["ImagePositionPatient"], orientation, (rows, columns, *spacing)


def _pixels(label: str, name: str, dataset, rows: int, columns: int) -> np.ndarray:
    """One slice's values after the modality LUT (HU for CT), as [column, row]; unusable pixel data refused."""
    try:
        pixels = dataset.pixel_array
        values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)
    except Exception as err:  # pydicom's decoders raise many types for short, compressed or odd pixel data
        raise UnreadableFileError(f"{label}: {name} pixel data unreadable ({err})") from None
    if values.shape != (rows, columns):
        raise UnreadableFileError(f"{label}: {name} pixel data is {values.shape}, not one {rows}x{columns} grey image")
    return values.T


def _assemble(label: str, slices: list) -> Volume:
    """Check a series' geometry and stack its slices into a RAS+ volume."""
    geometry = [_slice_geometry(label, name, dataset) for name, dataset in slices]
    if len(slices) < 2:
        raise VolumeShapeError(f"{label}: a single DICOM slice is not a volume")
    first_name = slices[0][0]
    _, orientation, grid = geometry[0]
    for (name, _), (_, other_orientation, other_grid) in zip(slices[1:], geometry[1:]):
        if not np.allclose(other_orientation, orientation, atol=ORIENTATION_TOLERANCE):
            raise MixedOrientationError(f"{label}: slices differ in ImageOrientationPatient ({first_name} vs {name})")
        if not np.allclose(other_grid, grid, rtol=1e-4):
            raise MixedOrientationError(f"{label}: slices differ in size or PixelSpacing ({first_name} vs {name})")

    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    positions = np.array([position for position, _, _ in geometry])
    order = np.argsort(positions @ normal, kind="stable")
    slices = [slices[i] for i in order]
    positions = positions[order]
    _check_spacing(label, positions @ normal, [name for name, _ in slices])

    rows, columns, row_spacing, column_spacing = grid
    lps = np.eye(4)
    lps[:3, 0] = row_cosine * column_spacing  # array axis 0 runs along a row (column index)
    lps[:3, 1] = column_cosine * row_spacing  # array axis 1 runs down a column (row index)
    lps[:3, 2] = (positions[-1] - positions[0]) / (len(slices) - 1)  # true step, gantry tilt included
    lps[:3, 3] = positions[0]

    data = np.empty((columns, rows, len(slices)), dtype=np.float32)
    for k, (name, dataset) in enumerate(slices):
        data[:, :, k] = _pixels(label, name, dataset, rows, columns)
    first = slices[0][1]
    modality = str(first.get("Modality", ""))
    return Volume(
        data,
        LPS_TO_RAS @ lps,
        modality if modality in MODALITIES else "unknown",
        hashed_id(b"dicom-series", str(first.get("SeriesInstanceUID", ""))),
    )


def _check_spacing(label: str, distances: np.ndarray, names: list[str]) -> None:
    """Refuse duplicate positions, gaps and uneven spacing along the slice normal (distances sorted)."""
    steps = np.diff(distances)
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_FRACTION * float(np.median(steps)))
    duplicates = np.flatnonzero(steps < tolerance)
    if duplicates.size:
        k = int(duplicates[0])
        raise DuplicateSliceError(
            f"{label}: {names[k]} and {names[k + 1]} sit at the same position ({distances[k]:.3f} mm along the "
            "slice normal): duplicate files, or a multi-echo/temporal series"
        )
    nominal = float(np.median(steps))
    for k, step in enumerate(steps):
        if abs(step - nominal) <= tolerance:
            continue
        multiple = round(step / nominal)
        if multiple >= 2 and abs(step - multiple * nominal) <= tolerance * multiple:
            raise MissingSliceError(
                f"{label}: gap of {step:.3f} mm between {names[k]} and {names[k + 1]} where slices are "
                f"{nominal:.3f} mm apart: {multiple - 1} slice(s) missing"
            )
        raise UnevenSpacingError(
            f"{label}: uneven slice spacing, {steps.min():.3f} to {steps.max():.3f} mm (step of {step:.3f} mm "
            f"between {names[k]} and {names[k + 1]})"
        )
