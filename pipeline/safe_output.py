"""Outputs that never cost a user data: checked before any compute, written beside their final name and
moved into place whole, and never replacing what soupgan did not write.

- An output may not be an input, hold one, or lie inside an input folder.
- `--force` replaces a file, or a folder holding only a series soupgan wrote (its marker lists the files).
- Every write goes through a staging folder `.soupgan-partial-*` beside the target (created under the
  umask, like the output) and is renamed into place; an interrupted run removes it, a killed one leaves it
  hidden and owned (host, pid), and the next write into that folder removes it once its owner is gone.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
from typing import Iterable, Iterator

from pipeline.errors import InputError

STAGING_PREFIX = ".soupgan-partial-"
OWNER_FILE = "owner.json"
SERIES_MARKER = ".soupgan-series.json"
UNOWNED_STALE_SECONDS = 3600  # a staging folder killed before it named its owner


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_apart_from_inputs(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], role: str = "input") -> None:
    """Refuse an output that is an input, holds one, or lies inside an input folder (`role` names what the
    others are in the message: an input, or another output of the same run)."""
    out = _real(output)
    for given in inputs:
        source = _real(given)
        same_file = os.path.exists(out) and os.path.exists(source) and os.path.samefile(out, source)
        if out == source or same_file:
            raise InputError(f"{output} is the {role}; choose another path")
        if _within(source, out):
            raise InputError(f"{output} holds the {role} {given}; choose a path outside it")
        if os.path.isdir(source) and _within(out, source):
            raise InputError(f"{output} lies inside the {role} folder {given}; choose a path outside it")


def check_replaceable(path: str | os.PathLike, force: bool, folder: bool = False) -> None:
    """An existing `path` needs --force, and --force replaces only a file (or, for a folder output, an empty
    folder or one holding only the series soupgan wrote there)."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if not force:
        raise InputError(f"{path} exists; pass --force to replace it")
    if not folder:
        if os.path.isdir(path):
            raise InputError(f"{path} is a folder; --force replaces a file, never a folder")
        return
    if not os.path.isdir(path) or os.path.islink(path):
        raise InputError(f"{path} exists and is not a folder; --force replaces only a series folder soupgan wrote")
    foreign = sorted(set(os.listdir(path)) - set(written_series_files(path)))
    if foreign:
        raise InputError(f"{path} holds files soupgan did not write (e.g. {foreign[0]}); --force replaces only a "
                         "folder holding nothing but a series soupgan wrote")


def written_series_files(folder: str) -> list[str]:
    """The names soupgan's marker in `folder` lists (the marker included); [] without a readable marker."""
    try:
        with open(os.path.join(folder, SERIES_MARKER), encoding="utf-8") as handle:
            files = json.load(handle)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [SERIES_MARKER, *(name for name in files if isinstance(name, str))]


def write_series_marker(folder: str, files: list[str], series_uid: str) -> None:
    """Mark `folder` as a series soupgan wrote, listing its files (what a later --force may replace)."""
    with open(os.path.join(folder, SERIES_MARKER), "w", encoding="utf-8") as handle:
        json.dump({"writer": "soupgan", "series_instance_uid": series_uid, "files": sorted(files)}, handle)


def check_writable(path: str | os.PathLike, make_parents: bool = False) -> None:
    """Refuse now, before any compute, an output whose folder is missing or cannot be written.

    With `make_parents` the nearest existing ancestor must be writable (the folders are made later).
    """
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    if make_parents:
        while not os.path.exists(parent) and os.path.dirname(parent) != parent:
            parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise InputError(f"{parent}: no such folder for the output")
    probe = os.path.join(parent, f"{STAGING_PREFIX}probe-{uuid.uuid4().hex}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as err:
        raise InputError(f"{path}: cannot write in {parent} ({err.strerror})") from None


def check_output(path: str | os.PathLike, force: bool, inputs: Iterable[str | os.PathLike] = (),
                 folder: bool = False, make_parents: bool = False) -> None:
    """All the checks an output gets before any compute: apart from the inputs, replaceable, writable."""
    check_apart_from_inputs(path, inputs)
    check_replaceable(path, force, folder)
    check_writable(path, make_parents)


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_stale(staging: str) -> bool:
    try:
        with open(os.path.join(staging, OWNER_FILE), encoding="utf-8") as handle:
            owner = json.load(handle)
        return owner["host"] == socket.gethostname() and not _pid_alive(int(owner["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - os.stat(staging).st_mtime > UNOWNED_STALE_SECONDS
        except OSError:
            return False


def remove_stale_staging(parent: str) -> list[str]:
    """Remove staging folders in `parent` whose run was killed on this host; returns their paths."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False) and _is_stale(entry.path):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


@contextlib.contextmanager
def staged(path: str | os.PathLike) -> Iterator[str]:
    """Yield a path to write the output at (a file, or a folder the caller makes); on success it is moved
    to `path` whole, replacing what `check_replaceable` allowed; on any failure nothing is left."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    remove_stale_staging(parent)
    staging = os.path.join(parent, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)  # mode 0777 less the umask, as the output will be
    try:
        with open(os.path.join(staging, OWNER_FILE), "w", encoding="utf-8") as handle:
            json.dump(_owner(), handle)
        written = os.path.join(staging, "output")
        yield written
        _publish(written, path, os.path.join(staging, "previous"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(written: str, path: str, previous: str) -> None:
    """Move the written output to `path`; a folder already there is moved aside first and dropped after."""
    if os.path.isdir(written) and os.path.isdir(path) and not os.path.islink(path):
        os.rename(path, previous)
        try:
            os.rename(written, path)
        except OSError:
            os.rename(previous, path)
            raise
        return
    os.replace(written, path)
