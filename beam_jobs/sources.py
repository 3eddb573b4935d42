"""Expand the job's INPUT arguments (files, folders, globs; local, gs://, s3://) into volume sources.

Runs on the driver through Beam's FileSystems. A NIfTI file is one volume; every other file is taken
as part of the DICOM series in its folder, so a folder tree of series gives one source per leaf folder.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

from apache_beam.io.filesystems import FileSystems

from pipeline.nifti_io import is_nifti_path

NIFTI, DICOM = "nifti", "dicom"
_GLOB_CHARS = set("*?[")
_NOT_DICOM_SUFFIXES = (".json", ".jsonl", ".txt", ".md", ".csv", ".tfrecord", ".tfrecord.gz")


@dataclasses.dataclass(frozen=True)
class VolumeSource:
    """One volume to read: a NIfTI file, or the files of one DICOM series folder."""

    kind: str
    path: str
    files: tuple[str, ...] = ()


def dead_letter(source: str, stage: str, reason: str) -> dict:
    """One line of dead_letters.jsonl: which input, at which stage (expand, read, patch), and why."""
    return {"source": source, "stage": stage, "reason": reason}


def _parent(path: str) -> str:
    """The folder of a file path or URL (local, gs://, s3://)."""
    return path.rsplit("/", 1)[0]


def match_paths(pattern: str) -> list[str]:
    """Sorted paths matching a pattern on any Beam file system; [] when nothing matches."""
    try:
        return sorted(meta.path for meta in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # Beam raises BeamIOError for a pattern that matches nothing on some file systems
        return []


def expand_inputs(inputs: list[str]) -> tuple[list[VolumeSource], list[dict]]:
    """(sources in a stable order, dead letters for inputs that matched nothing)."""
    sources: dict[str, VolumeSource] = {}
    unmatched = []
    for given in inputs:
        if _GLOB_CHARS & set(given):
            files = match_paths(given)
        elif is_nifti_path(given):
            files = [given] if FileSystems.exists(given) else []
        else:
            files = match_paths(FileSystems.join(given.rstrip("/"), "**"))
        if not files:
            unmatched.append(dead_letter(given, "expand", "no such file or folder, or nothing matched"))
            continue
        series = defaultdict(list)
        for path in files:
            name = path.rsplit("/", 1)[-1]
            if is_nifti_path(path):
                sources[path] = VolumeSource(NIFTI, path)
            elif not name.startswith(".") and not name.lower().endswith(_NOT_DICOM_SUFFIXES):
                series[_parent(path)].append(path)
        for folder, members in series.items():
            sources[folder] = VolumeSource(DICOM, folder, tuple(sorted(members)))
    return [sources[key] for key in sorted(sources)], unmatched
