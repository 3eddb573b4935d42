"""`soupgan train` end to end on shards written by the shards job: the run folder, 2 replicas in sync,
kill -9 and resume, stage 2 from stage 1, and one-line errors for bad input."""
import csv
import json
import os

import numpy as np
import pytest

from model.networks.generator import load_generator
from pipeline.data.shard_reader import read_local_manifest, split_files, validation_batches
from soupgan import cli
from tests.model.shard_set import make_v1_shard_set
from tests.model.train_cli import TINY, kill_after_first_checkpoint, train


def summary(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def history_epochs(run):
    with open(os.path.join(run, "history.csv"), newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def stage1_run(shard_set, tmp_path_factory):
    """The issue's must-show command (tiny network): two epochs of five steps on 2 logical CPU devices."""
    run = str(tmp_path_factory.mktemp("runs") / "stage1")
    result = train("--data", shard_set, "--out", run, "--stage", "mse", "--epochs", "2", "--steps-per-epoch", "5",
                   "--replicas", "2", *TINY)
    return run, summary(result), result


def test_stage1_writes_the_run_folder_with_two_replicas(stage1_run):
    run, report, result = stage1_run
    assert report["replicas"] == 2 and report["resumed_from"] == 0 and report["optimizer_steps"] == 10
    assert report["monitor"] == "val_loss" and np.isfinite(report["last"]["val_loss"])
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["stage"] == "mse" and config["replicas"] == 2 and config["filters"] == 4
    assert history_epochs(run) == [0, 1]
    state = json.load(open(os.path.join(run, "checkpoints", "state.json")))
    assert state["epoch"] == 2 and os.path.exists(os.path.join(run, "checkpoints", state["checkpoint"]))
    assert open(os.path.join(run, "curves.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(run, "logs", "train")))
    assert os.path.exists(os.path.join(run, "last_generator.keras"))
    generator = load_generator(os.path.join(run, "best_generator.keras"))
    assert generator.flow_input and config["flow_input"]  # the shard set's flow-guided inputs, from its manifest
    image = np.random.default_rng(0).random((1, 16, 16, 16, 1), dtype=np.float32)
    assert generator({"image": image, "scale": np.float32(2.5)}).shape == image.shape
    assert "Epoch 2/2" in result.stdout


def test_val_loss_is_the_mean_over_every_val_pair(stage1_run, shard_set):
    """No phantom batch in the mean (keras-team/keras#23084): the last epoch's val_loss is the last generator's
    MSE over all the val split's pairs, read here by the TensorFlow-free reader."""
    run, report, _ = stage1_run
    generator = load_generator(os.path.join(run, "last_generator.keras"))
    manifest = read_local_manifest(shard_set)
    errors = [np.mean((np.asarray(generator({"image": inputs[..., None], "scale": scales}))[..., 0] - targets) ** 2,
                      axis=(1, 2, 3))
              for inputs, targets, scales in validation_batches(split_files(shard_set, "val"),
                                                                "thin-to-thin", 4, 2, 16)]
    assert sum(map(len, errors)) == manifest["counts"]["val"]["total"] and len(errors[-1]) == 4
    assert report["last"]["val_loss"] == pytest.approx(float(np.mean(np.concatenate(errors))), rel=1e-4)


@pytest.mark.slow
def test_stage2_runs_from_the_stage1_run(stage1_run, shard_set, tmp_path):
    run, _, _ = stage1_run
    report = summary(train("--data", shard_set, "--out", tmp_path / "gan",
                           "--stage", "gan", "--init", run, "--vgg-weights", "none", "--epochs", "1",
                           "--steps-per-epoch", "2", "--validation-steps", "2", "--batch-size", "4",
                           "--disc-filters", "4"))
    for key in ("perceptual", "adversarial", "d_loss", "mse", "loss"):
        assert np.isfinite(report["last"][key]), key
    initial = load_generator(os.path.join(run, "best_generator.keras"))
    tuned = load_generator(str(tmp_path / "gan" / "best_generator.keras"))
    assert tuned.get_config()["filters"] == initial.get_config()["filters"] == 4  # the stage-1 architecture


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(shard_set, tmp_path):
    run = str(tmp_path / "killed")
    args = ["--data", shard_set, "--out", run, "--epochs", "3", "--steps-per-epoch", "40", *TINY]
    state_path = kill_after_first_checkpoint(*args)
    checkpointed = json.load(open(state_path))["epoch"]
    assert 1 <= checkpointed < 3

    report = summary(train(*args))
    assert report["resumed_from"] == checkpointed
    assert report["optimizer_steps"] == 3 * 40  # the optimizer state came back, not just the epoch number
    assert sorted(set(history_epochs(run))) == [0, 1, 2]
    assert json.load(open(state_path))["epoch"] == 3
    assert summary(train(*args))["resumed_from"] == 3  # a finished run has nothing left to do


@pytest.mark.parametrize("extra, message", [
    (["--stage", "gan"], "--stage gan needs --init RUN"),
    (["--batch-size", "3", "--replicas", "2"], "--batch-size 3 is not divisible by the 2 replicas"),
    (["--stage", "gan", "--init", "/nonexistent/run"], "no best_generator.keras there"),
    (["--init", "/nonexistent/start.keras"], "no such generator .keras file"),
    (["--strategy", "multiworker"], "needs TF_CONFIG"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
    (["--patch-depth", "24"], "--patch-depth applies to pairs drawn from --volumes"),
])
def test_bad_settings_exit_2_with_one_line(shard_set, tmp_path, extra, message, capsys, monkeypatch):
    """In-process through the CLI's own entry point: these fail before any training starts."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cli.main(["train", "--data", shard_set, "--out", str(tmp_path / "run"), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("soupgan train: error:") and message in lines[0]


@pytest.mark.slow
def test_schema_1_shard_sets_still_train_spline_generators(shard_set, tmp_path):
    old = make_v1_shard_set(shard_set, str(tmp_path))
    report = summary(train("--data", old, "--out", tmp_path / "run", "--epochs", "1", "--steps-per-epoch", "2",
                           "--validation-steps", "1", *TINY))
    assert report["optimizer_steps"] == 2 and np.isfinite(report["last"]["val_loss"])
    assert not load_generator(str(tmp_path / "run" / "best_generator.keras")).flow_input


def test_a_tf_config_that_does_not_name_this_task_is_one_line(shard_set, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert cli.main(["train", "--data", shard_set, "--out", str(tmp_path / "run"), "--strategy", "multiworker"]) == 2
    assert capsys.readouterr().err.strip() == (
        'soupgan train: error: TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, "task": '
        '{"type": "worker", "index": 0}}, naming this task in the cluster')


def test_flow_input_on_a_spline_shard_set_is_refused(shard_set, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    old = make_v1_shard_set(shard_set, str(tmp_path))
    assert cli.main(["train", "--data", old, "--out", str(tmp_path / "flow"), "--flow-input"]) == 2
    assert "stores spline inputs; --flow-input needs shards made with `soupgan shards --input flow`" in \
        capsys.readouterr().err


def test_unreadable_slice_dilations_are_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--volumes", "a.nii.gz", "--out", str(tmp_path / "run"), "--slice-dilations", "2,x"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "soupgan train: error: argument --slice-dilations: '2,x': expected positive integers like 2,4")


def test_consistent_input_is_for_thin_to_thick_only(tmp_path, capsys):
    assert cli.main(["train", "--volumes", "a.nii.gz", "--out", str(tmp_path / "run"), "--steps-per-epoch", "2",
                     "--consistent-input"]) == 2
    assert "--consistent-input is for --criterion thin-to-thick" in capsys.readouterr().err


def test_volumes_need_steps_per_epoch(tmp_path, capsys):
    assert cli.main(["train", "--volumes", "a.nii.gz", "--out", str(tmp_path / "run")]) == 2
    assert "--volumes draws pairs without end: give --steps-per-epoch" in capsys.readouterr().err


def test_not_a_shard_set_exits_2(tmp_path):
    result = train("--data", tmp_path, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "is not a shard set: no manifest.json" in result.stderr.strip().splitlines()[-1]


def test_restart_with_different_settings_is_refused(stage1_run, shard_set):
    run, _, _ = stage1_run
    result = train("--data", shard_set, "--out", run, "--epochs", "2", "--filters", "8", "--blocks", "1",
                   "--batch-size", "4", "--disc-filters", "4", "--replicas", "2")
    assert result.returncode == 2
    assert "holds a different run (filters changed)" in result.stderr
