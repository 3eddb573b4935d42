"""Helpers for running `soupgan train` as a user does: a real subprocess of the console script."""
import shutil
import subprocess
import sys

from tests.test_cli import ROOT

TINY = ["--filters", "4", "--blocks", "1", "--batch-size", "4", "--disc-filters", "4"]


def soupgan_command(*args):
    script = shutil.which("soupgan", path=shutil.os.path.dirname(sys.executable))
    return ([script] if script else [sys.executable, "-m", "soupgan"]) + [str(a) for a in args]


def train(*args, timeout=300):
    return subprocess.run(soupgan_command("train", *args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
