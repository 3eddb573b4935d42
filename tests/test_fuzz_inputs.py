"""Seeded fuzzing of `soupgan upsample` with mutated NIfTI headers and DICOM tag sets.

Every case must end in exit 0 with a correct output (readable, on the upsampled grid, inside the input's value
range) or in exit 2 with one error line and nothing written; never a traceback, never a partial output.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import warnings

import nibabel as nib
import numpy as np
import pydicom
import pydicom.encaps
import pytest
from pydicom import config as pydicom_config

from pipeline.io.encoding import value_bounds
from pipeline.errors import InputError
from pipeline.method.geometry import upsampled_length
from pipeline.io.staging import STAGING_PREFIX
from pipeline.io.volume_io import read_encoding, read_volume
from tests.dicom_factory import write_series
from tests.test_cli import run_cli

SEED = 20261206
NIFTI_CASES = 160
DICOM_CASES = 80
DTYPES = (np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64)
ODD_NUMBERS = (0.0, -2.0, np.nan, np.inf, 1e30, 1e-30, 7.0)


def pick(rng, options):
    """One of `options` (which may be tuples of different lengths, as numpy's choice cannot take)."""
    return options[int(rng.integers(len(options)))]


def _nifti_mutations(rng):
    """Named header mutations: each takes the header (a structured array view) and changes one field."""

    def pixdim(h):
        h["pixdim"][rng.integers(0, 4)] = rng.choice(ODD_NUMBERS)

    def srow(h):
        h["sform_code"] = rng.integers(0, 5)
        h[rng.choice(["srow_x", "srow_y", "srow_z"])][rng.integers(0, 4)] = rng.choice(ODD_NUMBERS)

    def quaternion(h):
        h["qform_code"] = rng.integers(0, 5)
        h[rng.choice(["quatern_b", "quatern_c", "quatern_d", "qoffset_x"])] = rng.choice((np.nan, 2.0, -1.0, 1e30))

    def codes(h):
        h["sform_code"], h["qform_code"] = rng.integers(0, 5, size=2)

    def scaling(h):
        h["scl_slope"] = rng.choice((0.0, np.nan, np.inf, -1.0, 1e30, 1e-30, 2.5))
        h["scl_inter"] = rng.choice((np.nan, np.inf, -1e30, 5.0, 0.0))

    def dims(h):
        k = rng.integers(0, 5)
        h["dim"][k] = rng.choice((0, 1, -3, 2, 4, 7, 32767))

    def datatype(h):
        h["datatype"] = rng.choice((1, 2, 4, 8, 16, 32, 64, 128, 256, 511, 512, 768, 0))

    def offset(h):
        h["vox_offset"] = rng.choice((0.0, 10.0, 352.0, 1e6))

    def magic(h):
        h["magic"] = rng.choice((b"ni1", b"xx\x00", b"n+2"))

    def units(h):
        h["xyzt_units"] = rng.integers(0, 64)

    return [pixdim, srow, quaternion, codes, scaling, dims, datatype, offset, magic, units]


def _data_variant(rng, data: np.ndarray) -> np.ndarray:
    """The voxels, sometimes odd: constant, extreme, with NaN, or all zero."""
    kind = rng.integers(0, 8)
    if kind == 0:
        return np.full_like(data, data.flat[0])
    if kind == 1 and data.dtype.kind == "f":
        data = data.copy()
        data.flat[rng.integers(0, data.size)] = np.nan
    if kind == 2 and data.dtype.kind == "f":
        return (data * 1e37).astype(data.dtype)
    if kind == 3:
        return np.zeros_like(data)
    return data


def nifti_case(rng, folder: str, index: int) -> str:
    """A small thick-slice NIfTI file with 0-3 random header mutations, sometimes truncated or gzipped."""
    shape = (int(rng.integers(6, 15)), int(rng.integers(6, 15)), int(rng.integers(2, 7)))
    dtype = np.dtype(rng.choice(DTYPES))
    top = 250 if dtype == np.uint8 else 3000
    data = _data_variant(rng, (rng.random(shape) * top).astype(dtype))
    affine = np.diag([float(rng.choice((0.8, 1.0, 2.0))), 1.0, float(rng.choice((1.0, 3.0, 5.0))), 1.0])
    affine[:3, 3] = rng.normal(0, 50, 3)
    raw = bytearray(nib.Nifti1Image(data, affine).to_bytes())
    header = np.frombuffer(raw, dtype=nib.nifti1.header_dtype, count=1)[0:1].copy()
    mutations = _nifti_mutations(rng)
    with np.errstate(all="ignore"):
        for m in rng.choice(len(mutations), size=rng.integers(0, 4), replace=False):
            mutations[m](header[0])
    raw[:348] = header.tobytes()
    if rng.random() < 0.1:
        raw = raw[: int(rng.integers(0, len(raw)))]
    path = os.path.join(folder, f"case{index:03d}.nii")
    if rng.random() < 0.5:
        raw, path = gzip.compress(bytes(raw), mtime=0), path + ".gz"
    with open(path, "wb") as handle:
        handle.write(bytes(raw))
    return path


def _dicom_mutations(rng):
    """Named tag mutations, applied to one slice or to all of them."""

    def position(ds):
        ds.ImagePositionPatient = [float(rng.choice((np.nan, 0.0, 1e9, -3.0))), 0.0, float(rng.normal(0, 5))]

    def orientation(ds):
        ds.ImageOrientationPatient = list(pick(rng, ((0,) * 6, (1, 0, 0, 1, 0, 0), (1, 0, 0, 0.5, 0.5, 0),
                                                       (np.nan, 0, 0, 0, 1, 0), (0, 1, 0, 1, 0, 0))))

    def spacing(ds):
        ds.PixelSpacing = list(pick(rng, ((0, 0), (-1, 1), (np.nan, 1), (1e-9, 1e-9), (50, 50))))

    def rows(ds):
        ds.Rows = int(ds.get("Rows", 8)) + int(rng.choice((-1, 1, 100)))

    def bits(ds):
        ds.BitsAllocated = int(rng.choice((1, 8, 12, 32)))

    def sign(ds):
        ds.PixelRepresentation = 1 - int(ds.get("PixelRepresentation", 1))

    def rescale(ds):
        ds.RescaleSlope = float(rng.choice((0.0, np.nan, 1e10, -1.0, 0.001)))
        ds.RescaleIntercept = float(rng.choice((0.0, 1e10, -32768.0, np.inf)))

    def frames(ds):
        ds.NumberOfFrames = int(rng.choice((0, 1, 3)))

    def colour(ds):
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"

    def window(ds):
        ds.WindowCenter = list(pick(rng, ((40.0, 300.0), (40.0,), (np.nan,), (1e30,))))
        ds.WindowWidth = list(pick(rng, ((400.0, 1500.0), (0.0,), (-5.0,), (400.0,))))

    def modality(ds):
        ds.Modality = str(rng.choice(("MR", "XX", "")))

    def series(ds):
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()

    def delete(ds):
        keyword = str(rng.choice(("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
                                  "PixelData", "RescaleSlope", "BitsAllocated", "Modality", "SeriesInstanceUID")))
        if keyword in ds:
            delattr(ds, keyword)

    def compressed(ds):  # claims JPEG, holds a frame no decoder can read
        if "PixelData" in ds:
            ds.PixelData = pydicom.encaps.encapsulate([bytes(ds.PixelData)])
            ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit

    return [position, orientation, spacing, rows, bits, sign, rescale, frames, colour, window, modality, series,
            delete, compressed]


@contextlib.contextmanager
def _lenient_pydicom():
    """Let the fuzzer store invalid values (only while it writes its cases)."""
    previous = pydicom_config.settings.writing_validation_mode
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pydicom_config.settings.writing_validation_mode = previous


def dicom_case(rng, folder: str, index: int) -> str:
    """A small thick-slice CT series with 1-2 tag mutations on one slice or all, sometimes a truncated file."""
    series = os.path.join(folder, f"series{index:03d}")
    volume = rng.random((int(rng.integers(6, 13)), int(rng.integers(6, 13)), int(rng.integers(2, 6)))) * 1500 - 1000
    paths = write_series(series, volume.astype(np.float32), slice_step=float(rng.choice((2.5, 5.0))))
    mutations = _dicom_mutations(rng)
    chosen = [mutations[m] for m in rng.choice(len(mutations), size=rng.integers(1, 3), replace=False)]
    targets = paths if rng.random() < 0.5 else [paths[int(rng.integers(0, len(paths)))]]
    with _lenient_pydicom():
        for path in targets:
            ds = pydicom.dcmread(path)
            for mutate in chosen:
                with np.errstate(all="ignore"):
                    mutate(ds)
            ds.save_as(path)
    if rng.random() < 0.1:
        victim = paths[int(rng.integers(0, len(paths)))]
        with open(victim, "r+b") as handle:
            handle.truncate(int(rng.integers(0, os.path.getsize(victim))))
    return series


def check_case(argv: list[str], source: str, output: str, scale: float, code: int, stderr: str) -> str:
    """'ok' or 'refused' for a well-behaved case; a description of what went wrong otherwise."""
    if code is None:
        return f"raised:\n{stderr}"
    leftovers = [name for name in os.listdir(os.path.dirname(output)) if name.startswith(STAGING_PREFIX)]
    if leftovers:
        return f"staging left behind: {leftovers}"
    if code == 2:
        lines = stderr.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("soupgan upsample: error: "):
            return f"exit 2 without one error line: {stderr!r}"
        return "refused" if not os.path.exists(output) else "refused, but an output was written"
    if code != 0:
        return f"exit {code}: {stderr!r}"
    try:
        thick, thin = read_volume(source), read_volume(output)
    except InputError as err:
        return f"exit 0, but the input or output does not read back: {err}"
    expected = list(thick.shape)
    expected[2] = upsampled_length(thick.shape[2], scale, "thin-to-thin")
    if list(thin.shape) != expected:
        return f"output shape {thin.shape}, expected {tuple(expected)}"
    low, high = value_bounds(thick, read_encoding(source))
    tolerance = 1e-3 * max(1.0, abs(low), abs(high))
    if thin.data.min() < low - tolerance or thin.data.max() > high + tolerance:
        return f"values {thin.data.min():g}..{thin.data.max():g} outside {low:g}..{high:g}"
    if scale.is_integer():  # thin-to-thin keeps the measured slices as measured: no clip or type may change them
        step = abs(read_encoding(output).slope) if read_encoding(output).is_integer else 0.0
        thick_ras, thin_ras, axis = _in_ras(thick), _in_ras(thin), int(nib.orientations.io_orientation(thick.affine)[2, 0])
        measured = np.take(thin_ras, np.arange(0, thin_ras.shape[axis], int(scale)), axis=axis)
        error = float(np.abs(measured - thick_ras).max())
        if error > step / 2 + 1e-5 * max(1.0, float(np.abs(thick.data).max())):
            return f"measured slices changed by up to {error:g} (output step {step:g})"
    return "ok"


def _in_ras(volume) -> np.ndarray:
    """The voxels in the nearest RAS order: a DICOM series reads back in its own slice order."""
    return nib.orientations.apply_orientation(volume.data, nib.orientations.io_orientation(volume.affine))


@pytest.mark.slow
def test_mutated_headers_and_tags_end_cleanly(tmp_path, capsys):
    rng = np.random.default_rng(SEED)
    outcomes, problems = {"ok": 0, "refused": 0}, []
    cases = [("nifti", i) for i in range(NIFTI_CASES)] + [("dicom", i) for i in range(DICOM_CASES)]
    for kind, index in cases:
        folder = tmp_path / f"{kind}{index:03d}"
        folder.mkdir()
        source = nifti_case(rng, str(folder), index) if kind == "nifti" else dicom_case(rng, str(folder), index)
        scale = float(rng.choice((2.0, 2.5, 3.0)))
        output = str(folder / ("out.nii.gz" if rng.random() < 0.7 else "out_series"))
        argv = ["upsample", source, output, "--scale", f"{scale:g}", "--axis", "2"]
        code, stderr = run_cli(argv, capsys)
        verdict = check_case(argv, source, output, scale, code, stderr)
        if verdict in outcomes:  # well-behaved
            outcomes[verdict] += 1
        else:
            problems.append(f"{kind} case {index}: {' '.join(argv)}: {verdict}")
    print(f"fuzz: {len(cases)} cases, {outcomes['ok']} upsampled, {outcomes['refused']} refused with one line")
    assert not problems, "\n".join(problems)
    assert outcomes["ok"] >= len(cases) // 5 and outcomes["refused"] >= len(cases) // 5, outcomes  # both paths fuzzed
