"""Expand the job's INPUT arguments (files, folders, globs; local, gs://, s3://) into volume sources.

Runs on the driver through Beam's FileSystems. A NIfTI file is one volume; every other file is taken
as part of the DICOM series in its folder, so a folder tree of series gives one source per leaf folder.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
from collections import defaultdict

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipeline.errors import InputError
from pipeline.io.nifti_io import is_nifti_path

NIFTI, DICOM = "nifti", "dicom"
_GLOB_CHARS = set("*?[")
_NOT_DICOM_SUFFIXES = (".json", ".jsonl", ".txt", ".md", ".csv", ".tfrecord", ".tfrecord.gz")


@dataclasses.dataclass(frozen=True)
class VolumeSource:
    """One volume to read: a NIfTI file, or the files of one DICOM series folder."""

    kind: str
    path: str
    files: tuple[str, ...] = ()


def source_contents(source: VolumeSource) -> tuple[list[tuple[str, bytes]], str]:
    """(file name, bytes) of each file of a source, read through Beam's file systems (local, gs://, s3://), and the
    sha256 of those bytes in their listed order: what a shard records it was made from."""
    digest, contents = hashlib.sha256(), []
    for path in (source.path,) if source.kind == NIFTI else source.files:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            content = handle.read()
        digest.update(content)
        contents.append((path.rsplit("/", 1)[-1], content))
    return contents, digest.hexdigest()


def dead_letter(source: str, stage: str, reason: str) -> dict:
    """One line of dead_letters.jsonl: which input, at which stage (expand, read, patch), and why."""
    return {"source": source, "stage": stage, "reason": reason}


def _parent(path: str) -> str:
    """The folder of a file path or URL (local, gs://, s3://)."""
    return path.rsplit("/", 1)[0]


def _causes(error: BaseException) -> list[BaseException]:
    """The per-path errors inside Beam's (possibly nested) BeamIOError; the error itself when it has none."""
    details = list((getattr(error, "exception_details", None) or {}).values())
    return [cause for detail in details for cause in _causes(detail)] if details else [error]


def _not_found(error: BaseException) -> bool:
    return isinstance(error, FileNotFoundError) or getattr(error, "errno", None) == errno.ENOENT


def _cannot(action: str, path: str, error: BaseException) -> InputError:
    cause = _causes(error)[0]
    return InputError(f"{path}: cannot {action} ({type(cause).__name__}: {cause})")


def match_paths(pattern: str) -> list[str]:
    """Sorted paths matching a pattern on any Beam file system; [] when nothing matches. A file system that
    cannot be listed (credentials, network, an unknown scheme) is an `InputError` naming the real cause."""
    try:
        return sorted(meta.path for meta in FileSystems.match([pattern])[0].metadata_list)
    except BeamIOError as err:
        if all(_not_found(cause) for cause in _causes(err)):
            return []
        raise _cannot("list", pattern, err) from None
    except ValueError as err:  # FileSystems: no file system for this scheme
        raise InputError(f"{pattern}: {err}") from None


def path_exists(path: str) -> bool:
    """Whether a file exists on any Beam file system; other failures are an `InputError` naming the cause."""
    try:
        return FileSystems.exists(path)
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None
    except (BeamIOError, OSError) as err:
        raise _cannot("check", path, err) from None


def _matching_files(given: str) -> list[str]:
    """The files one INPUT argument names: a glob's matches, a NIfTI file, or everything under a folder."""
    if _GLOB_CHARS & set(given):
        return match_paths(given)
    if is_nifti_path(given):
        return [given] if path_exists(given) else []
    try:
        pattern = FileSystems.join(given.rstrip("/"), "**")
    except ValueError as err:  # no file system for this scheme (gs:// without apache-beam[gcp])
        raise InputError(f"{given}: {err}") from None
    return match_paths(pattern)


def expand_inputs(inputs: list[str]) -> tuple[list[VolumeSource], list[dict]]:
    """(sources in a stable order, dead letters for inputs that matched nothing or could not be listed)."""
    sources: dict[str, VolumeSource] = {}
    unmatched = []
    for given in inputs:
        try:
            files = _matching_files(given)
        except InputError as err:  # credentials, network: the real reason, not "nothing matched"
            unmatched.append(dead_letter(given, "expand", str(err)))
            continue
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
