"""Writes that appear whole or not at all, and replace only what they may.

Every output is written in a staging folder `.soupgan-partial-*` beside its target (made under the umask, as
the output will be) and renamed into place. What is at the target is checked again just before: without
permission to replace, an output that appeared there meanwhile is kept; with it, only a file or a series
soupgan wrote (its `.soupgan-series.json` marker lists the files) is replaced. A folder being replaced is
moved aside, then dropped once the new one is in place; an interruption between the two renames puts it
back. The staging of a run killed outright is removed by the next write into that folder once its owner is
known to be gone (same host, boot and PID namespace), and an old series it had moved aside is restored.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
from typing import Iterator

from pipeline.errors import InputError

STAGING_PREFIX = ".soupgan-partial-"
OWNER_FILE = "owner.json"
SERIES_MARKER = ".soupgan-series.json"
UNKNOWN_OWNER_STALE_SECONDS = 24 * 3600  # staging whose owner cannot be checked from here
_WRITTEN, _PREVIOUS = "output", "previous"


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


def check_replaceable(path: str | os.PathLike, force: bool, folder: bool = False) -> None:
    """An existing `path` needs --force, and --force replaces only a file (or, for a folder output, an empty
    folder or one holding only the series soupgan wrote there, which this process can move)."""
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
    if not os.access(path, os.W_OK):  # moving a folder aside and emptying it both write in it
        raise InputError(f"{path}: cannot replace it (no write permission on the folder)")


def _read_first_line(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.readline().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of process `pid` in clock ticks since boot ('' off Linux or when it is gone)."""
    fields = _read_first_line(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _pid_namespace() -> str:
    with contextlib.suppress(OSError):
        return os.readlink("/proc/self/ns/pid")
    return ""


def _owner(target: str) -> dict:
    """Who writes this staging folder, precisely enough to tell later that it is gone."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _read_first_line("/proc/sys/kernel/random/boot_id"),
            "pid_namespace": _pid_namespace(), "pid": pid, "process_start": _process_start(pid),
            "target": os.path.basename(target), "started": time.time()}


def _owner_gone(owner: dict) -> bool | None:
    """True when the owning process is known to have ended, False when it runs, None when it cannot be told
    from here (another host, or another PID namespace: a container)."""
    if owner["host"] != socket.gethostname():
        return None
    boot = _read_first_line("/proc/sys/kernel/random/boot_id")
    if owner.get("boot") and boot and owner["boot"] != boot:
        return True  # the machine restarted since
    if owner.get("pid_namespace", "") != _pid_namespace():
        return None
    pid = int(owner["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        pass
    started = owner.get("process_start", "")
    return bool(started) and _process_start(pid) not in ("", started)  # the PID now names another process


def _is_stale(staging: str) -> bool:
    try:
        with open(os.path.join(staging, OWNER_FILE), encoding="utf-8") as handle:
            gone = _owner_gone(json.load(handle))
    except (OSError, ValueError, KeyError, TypeError):
        gone = None  # killed before it named its owner
    if gone is not None:
        return gone
    try:
        return time.time() - os.stat(staging).st_mtime > UNKNOWN_OWNER_STALE_SECONDS
    except OSError:
        return False


def _restore_previous(staging: str, parent: str) -> None:
    """A series a killed run had moved aside goes back to its place if nothing took that place since."""
    previous = os.path.join(staging, _PREVIOUS)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        with open(os.path.join(staging, OWNER_FILE), encoding="utf-8") as handle:
            target = os.path.join(parent, os.path.basename(json.load(handle)["target"]))
        if os.path.isdir(previous) and not os.path.lexists(target):
            os.rename(previous, target)


def remove_stale_staging(parent: str) -> list[str]:
    """Remove the staging folders in `parent` whose runs are gone; returns their paths."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False) and _is_stale(entry.path):
                _restore_previous(entry.path, parent)
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


@contextlib.contextmanager
def staged(path: str | os.PathLike, replace: bool = True) -> Iterator[str]:
    """Yield a path to write the output at (a file, or a folder the caller makes); on success it is moved
    to `path` whole. `replace=False` (a run without --force) keeps whatever appeared at `path` meanwhile;
    on any failure nothing is left."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    remove_stale_staging(parent)
    staging = os.path.join(parent, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)  # mode 0777 less the umask, as the output will be
    try:
        with open(os.path.join(staging, OWNER_FILE), "w", encoding="utf-8") as handle:
            json.dump(_owner(path), handle)
        written = os.path.join(staging, _WRITTEN)
        yield written
        _publish(written, path, os.path.join(staging, _PREVIOUS), replace)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(written: str, path: str, previous: str, replace: bool) -> None:
    """Move the written output to `path`, checking again what it would replace."""
    folder = os.path.isdir(written)
    if os.path.lexists(path):
        if not replace:
            raise InputError(f"{path} appeared while this run computed; it was kept (pass --force to replace it)")
        check_replaceable(path, force=True, folder=folder)
    if not folder:
        if replace:
            os.replace(written, path)
            return
        try:
            os.link(written, path)  # fails, atomically, if something appeared at `path` after the check above
        except FileExistsError:
            raise InputError(f"{path} appeared while this run computed; it was kept (pass --force to replace it)")
        except OSError:  # a file system without hard links
            os.rename(written, path)
        return
    if not os.path.isdir(path):
        os.rename(written, path)
        return
    try:
        os.rename(path, previous)
        os.rename(written, path)
    except BaseException:  # an error or a signal between the two renames: the old series goes back
        if os.path.isdir(previous) and not os.path.lexists(path):
            os.rename(previous, path)
        raise
