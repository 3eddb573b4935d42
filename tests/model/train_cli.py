"""Helpers for running `soupgan train` as a user does: a real subprocess of the console script."""
import os
import signal
import subprocess
import time

from tests.test_cli import ROOT, soupgan_command

TINY = ["--filters", "4", "--blocks", "1", "--batch-size", "4", "--disc-filters", "4"]


def train(*args, timeout=300):
    return subprocess.run(soupgan_command("train", *args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def kill_after_first_checkpoint(*args, wait=240) -> str:
    """Start `soupgan train ARGS`, kill -9 it once RUN/checkpoints/state.json appears; returns that path."""
    run = args[list(args).index("--out") + 1]
    process = subprocess.Popen(soupgan_command("train", *args), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state_path = os.path.join(run, "checkpoints", "state.json")
    deadline = time.monotonic() + wait
    while not os.path.exists(state_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the first checkpoint to appear, not for a race to settle
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert os.path.exists(state_path), "no checkpoint was written"
    return state_path
