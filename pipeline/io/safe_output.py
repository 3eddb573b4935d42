"""The checks every output gets before any compute, so that a run never costs a user data: not an input,
not holding one, not inside an input folder; replaced only with --force and only when soupgan wrote it
(`pipeline.io.staging`, which checks again when it publishes); in a folder this process can write.
"""
from __future__ import annotations

import os
import uuid
from typing import Iterable

from pipeline.errors import InputError
from pipeline.io.staging import STAGING_PREFIX, check_replaceable


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
