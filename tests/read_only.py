"""A folder nothing can be written in, for the tests of unwritable outputs: a read-only tmpfs when the tests
run as root (which file modes do not stop), a mode-0555 folder otherwise."""
from __future__ import annotations

import contextlib
import os
import subprocess

import pytest


@contextlib.contextmanager
def read_only_folder(path) -> str:
    """Yield `path` (made here) as a folder that refuses new files; skip where neither way works."""
    path = str(path)
    os.makedirs(path)
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", path], capture_output=True)
        if mounted.returncode:
            pytest.skip(f"cannot mount a read-only tmpfs: {mounted.stderr.decode().strip()}")
        try:
            yield path
        finally:
            subprocess.run(["umount", path], check=True)
        return
    os.chmod(path, 0o555)
    try:
        yield path
    finally:
        os.chmod(path, 0o755)
