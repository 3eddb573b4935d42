"""The default weights' recipe (`benchmarks/train_default.py`) started from an existing generator: the refine
stages chain from it, nothing else is trained, and the card's provenance names the installed default."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.train_default import started_from
from model.networks.generator import SoupGenerator, load_generator
from model.weights.model_source import DEFAULT_WEIGHTS, model_card, provenance
from pipeline.io.nifti_io import write_nifti
from tests.benchmarks.test_train_on_device import SCAN_NAMES
from tests.pipeline.test_random_pairs import head
from tests.test_cli import ROOT

TINY = ["--filters", "4", "--blocks", "1", "--batch-size", "2", "--patch-size", "16", "--loss-margin", "2",
        "--steps-per-epoch", "2"]


def phantom_scans_and_start(tmp_path, names):
    """Phantom heads under the recipe's scan names in tmp_path/data (its path, for SOUPGAN_DATA) and a tiny
    untrained generator to start from in tmp_path/start.keras."""
    data = tmp_path / "data"
    data.mkdir()
    for seed, name in enumerate(names):
        write_nifti(head(seed=seed), str(data / name))
    start = SoupGenerator(filters=4, blocks=1)
    start({"image": np.zeros((1, 16, 16, 16, 1), np.float32), "scale": np.float32(2.0)})
    start.save(str(tmp_path / "start.keras"))
    return data


@pytest.mark.slow
def test_refine_stages_start_from_the_given_generator_and_chain(tmp_path):
    data = phantom_scans_and_start(tmp_path, SCAN_NAMES)
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_default", "--work", str(work), "--start", str(tmp_path / "start.keras"),
         "--synthetic", "1", "--refine", "log-mse:1:1e-4:3", "--refine", "log-mse:1:1e-4:4", "--average-last", "2",
         "--train-only", *TINY],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, "SOUPGAN_DATA": str(data)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(work)) == ["thin-to-thin-average.keras", "thin-to-thin-refine1", "thin-to-thin-refine2"]
    first, second = (json.load(open(work / f"thin-to-thin-refine{n}" / "config.json")) for n in (1, 2))
    assert first["init"] == str(tmp_path / "start.keras")
    assert second["init"] == str(work / "thin-to-thin-refine1" / "last_generator.keras")
    assert first["volumes"] == [str(data / name) for name in SCAN_NAMES]  # the synthetic volume found cached
    averaged = load_generator(str(work / "thin-to-thin-average.keras"))
    stages = [load_generator(str(work / f"thin-to-thin-refine{n}" / "last_generator.keras")) for n in (1, 2)]
    np.testing.assert_allclose(averaged.get_weights()[0], (stages[0].get_weights()[0] + stages[1].get_weights()[0]) / 2,
                               rtol=1e-6)


@pytest.mark.slow
def test_average_start_ships_the_mean_of_the_start_and_the_stage(tmp_path):
    data = phantom_scans_and_start(tmp_path, SCAN_NAMES[:3])
    work, start = tmp_path / "work", str(tmp_path / "start.keras")
    command = [sys.executable, "-m", "benchmarks.train_default", "--work", str(work), "--refine", "log-mse:1:1e-4:3",
               "--average-start", "--train-only", *TINY]
    env = {**os.environ, "SOUPGAN_DATA": str(data)}
    refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert refused.returncode == 2 and "give --start" in refused.stderr.strip().splitlines()[-1]
    mixed = subprocess.run([*command, "--start", start, "--criterion", "thin-to-thick", "--consistent-input"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert mixed.returncode == 2 and "cannot be averaged" in mixed.stderr.strip().splitlines()[-1]
    assert not work.exists()  # refused before any stage trained
    result = subprocess.run([*command, "--start", start], capture_output=True, text=True, cwd=ROOT, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    averaged = load_generator(str(work / "thin-to-thin-average.keras")).get_weights()
    ends = [load_generator(path).get_weights()
            for path in (start, str(work / "thin-to-thin-refine1" / "last_generator.keras"))]
    assert not np.allclose(ends[0][-2], ends[1][-2])  # the stage moved its exit (zero at the start)
    for mean, first, last in zip(averaged, *ends):
        np.testing.assert_allclose(mean, (first + last) / 2, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_consistent_and_flow_input_reach_the_thin_to_thick_stages_and_their_generator(tmp_path):
    data = phantom_scans_and_start(tmp_path, SCAN_NAMES)
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_default", "--work", str(work), "--start", str(tmp_path / "start.keras"),
         "--criterion", "thin-to-thick", "--consistent-input", "--flow-input", "--refine", "log-mse:1:1e-4:3",
         "--train-only", *TINY],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, "SOUPGAN_DATA": str(data)})
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.load(open(work / "thin-to-thick-refine1" / "config.json"))
    assert config["criterion"] == "thin-to-thick" and config["consistent_input"] is config["flow_input"] is True
    generator = load_generator(str(work / "thin-to-thick-refine1" / "last_generator.keras"))
    assert generator.consistent_input and generator.flow_input


def test_a_bad_start_is_one_line_and_refused_before_training(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.train_default", "--work", str(tmp_path / "w"),
                             "--start", str(tmp_path / "missing.keras"), "--refine", "log-mse:1:1e-4:3"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "no such generator file" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "w").exists()


def latest_and_kept(card: dict) -> tuple[str, str]:
    """(the criterion the card's latest run trained, the one it kept from an earlier run)."""
    kept = [criterion for criterion, entry in card["models"].items() if "provenance" in entry]
    assert len(kept) == 1, "a --start run trains one generator and keeps the other with its provenance"
    return next(criterion for criterion in card["models"] if criterion not in kept), kept[0]


def test_provenance_names_the_installed_recipe_only_for_the_installed_generator(tmp_path):
    card = model_card()
    latest, _ = latest_and_kept(card)
    shipped = started_from(os.path.join(DEFAULT_WEIGHTS, f"{latest}.keras"))
    assert shipped["sha256"] == card["models"][latest]["sha256"] and shipped["recipe"] == card["recipe"]
    other = tmp_path / "other.keras"
    other.write_bytes(b"not the default")
    assert set(started_from(str(other))) == {"generator", "sha256"}


def test_a_generator_kept_from_an_earlier_run_keeps_its_own_provenance():
    """A generator the card's latest run did not train was made by an earlier recipe: its entry says so, and a
    run started from it records that recipe, not the latest one."""
    card = model_card()
    latest, kept = latest_and_kept(card)
    earlier = provenance(card, kept)
    assert earlier == card["models"][kept]["provenance"] and earlier["recipe"] != card["recipe"]
    assert provenance(card, latest)["recipe"] == card["recipe"]
    started = started_from(os.path.join(DEFAULT_WEIGHTS, f"{kept}.keras"))
    assert started["recipe"] == earlier["recipe"] and started["training_data"] == earlier["training_data"]


def test_thin_to_thick_stages_refine_a_start_and_need_one(tmp_path):
    data = phantom_scans_and_start(tmp_path, SCAN_NAMES[:3])
    work = tmp_path / "work"
    command = [sys.executable, "-m", "benchmarks.train_default", "--work", str(work), "--criterion", "thin-to-thick",
               "--refine", "log-mse:1:1e-4:3", "--train-only", *TINY]
    env = {**os.environ, "SOUPGAN_DATA": str(data)}
    refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert refused.returncode == 2 and "give --start and --refine" in refused.stderr.strip().splitlines()[-1]
    result = subprocess.run([*command, "--start", str(tmp_path / "start.keras")], capture_output=True, text=True,
                            cwd=ROOT, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(work) == ["thin-to-thick-refine1"]
    config = json.load(open(work / "thin-to-thick-refine1" / "config.json"))
    assert config["criterion"] == "thin-to-thick" and config["init"] == str(tmp_path / "start.keras")
