"""Helpers for running `soupgan train` as a user does: a real subprocess of the console script."""
import subprocess

from tests.test_cli import ROOT, soupgan_command

TINY = ["--filters", "4", "--blocks", "1", "--batch-size", "4", "--disc-filters", "4"]


def train(*args, timeout=300):
    return subprocess.run(soupgan_command("train", *args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
