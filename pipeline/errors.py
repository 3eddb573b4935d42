"""Typed errors for bad input. Each carries a one-line reason; the CLI maps `InputError` to exit code 2."""


class SoupganError(Exception):
    """Base of every error soupgan raises on purpose."""


class InputError(SoupganError, ValueError):
    """The input cannot be used; the message says why in one line."""

    def __init__(self, reason: str):
        super().__init__(" ".join(str(reason).split()))  # never more than one line


class UnreadableFileError(InputError):
    """Empty, truncated, or not a NIfTI/DICOM file at all."""


class VolumeShapeError(InputError):
    """Not a 3D volume (2D image, 4D series, a single slice, or too few slices)."""


class NonFiniteVoxelsError(InputError):
    """NaN or infinite voxel values."""


class DicomSeriesError(InputError):
    """A DICOM series that cannot be assembled into one regular volume."""


class MultipleSeriesError(DicomSeriesError):
    """The folder holds more than one SeriesInstanceUID."""


class MixedOrientationError(DicomSeriesError):
    """Slices of one series with different ImageOrientationPatient or pixel grids."""


class DuplicateSliceError(DicomSeriesError):
    """Two slices at the same position along the slice normal."""


class MissingSliceError(DicomSeriesError):
    """A gap in the slice positions: one or more slices missing."""


class UnevenSpacingError(DicomSeriesError):
    """Slice positions that are not evenly spaced (and not explained by a missing slice)."""


class RecordSchemaError(InputError):
    """A TFRecord example that does not follow this version of the record schema."""
