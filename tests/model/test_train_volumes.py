"""`soupgan train --volumes`: pairs drawn on the fly from NIfTI scans, mixed precision, mid-epoch checkpoints
that a kill -9 resumes from, new data order on restart, the first run's config kept."""
import json
import os
import re

import keras
import numpy as np
import pytest

from model.networks.generator import load_generator
from model.training.inputs import volume_pairs_dataset
from model.training.train_config import TrainConfig
from model.training.trainer import train
from pipeline.errors import InputError
from pipeline.data.random_pairs import SamplerConfig
from pipeline.io.volume_io import read_volume
from tests.generators import random_generator
from tests.model.train_cli import TINY, kill_after_first_checkpoint, train as train_cli

PATCH = ["--patch-size", "16"]


def test_mixed_precision_run_from_volumes_saves_a_float32_generator(scans, tmp_path):
    out = str(tmp_path / "run")
    summary = train(TrainConfig(volumes=scans, out=out, steps_per_epoch=3, epochs=2, filters=4, blocks=1,
                                batch_size=2, patch_size=16, precision="mixed_float16", lr_schedule="cosine"))
    assert summary["optimizer_steps"] == 6 and np.isfinite(summary["last"]["loss"])
    assert keras.config.dtype_policy().name == "float32"  # the run's policy does not leak
    generator = load_generator(os.path.join(out, "last_generator.keras"))
    assert generator.compute_dtype == "float32"
    x = np.random.default_rng(0).random((1, 16, 16, 16, 1), dtype=np.float32)
    assert generator({"image": x, "scale": np.float32(3)}).dtype == "float32"
    assert not np.array_equal(generator({"image": x, "scale": np.float32(3)}), x)  # it learnt something


def test_restarts_and_workers_draw_new_pairs_reproducibly(scans):
    volumes = [read_volume(path) for path in scans]
    config = SamplerConfig(patch_size=16)
    first = lambda seed: next(iter(volume_pairs_dataset(volumes, config, 2, seed)))[1].numpy()  # noqa: E731
    np.testing.assert_array_equal(first((0, 0, 0)), first((0, 0, 0)))
    assert not np.array_equal(first((0, 0, 0)), first((0, 300, 0)))  # resumed after 300 steps
    assert not np.array_equal(first((0, 0, 0)), first((0, 0, 1)))  # worker 1


def test_volumes_are_drawn_at_the_scales_asked_for_fractional_ones_too(scans, tmp_path):
    out = str(tmp_path / "run")
    summary = train(TrainConfig(volumes=scans, out=out, scales=[2.5, 3], steps_per_epoch=2, epochs=1, filters=4,
                                blocks=1, batch_size=2, patch_size=16))
    assert summary["optimizer_steps"] == 2 and np.isfinite(summary["last"]["loss"])
    assert json.load(open(os.path.join(out, "config.json")))["scales"] == [2.5, 3]
    volumes = [read_volume(path) for path in scans]
    batch = next(iter(volume_pairs_dataset(volumes, SamplerConfig(patch_size=16, scales=(2.5, 3)), 16, (0, 0, 0))))
    assert set(batch[0]["scale"].numpy().tolist()) == {2.5, 3.0}
    for bad, message in (({"scales": [7]}, "--scales 7: outside the generator's range [2, 6]"),
                         ({"scales": [2.5], "volumes": None, "data": "shards"}, "--scales applies to pairs drawn")):
        with pytest.raises(InputError, match=re.escape(message)):
            TrainConfig(**{"volumes": scans, "out": out, "steps_per_epoch": 1, **bad}).validate()


@pytest.mark.slow
def test_killed_mid_epoch_run_resumes_at_its_last_step_checkpoint(scans, tmp_path):
    run = str(tmp_path / "killed")
    args = ["--volumes", *scans, "--out", run, "--epochs", "1", "--steps-per-epoch", "400", "--checkpoint-every", "7",
            *PATCH, *TINY]
    state_path = kill_after_first_checkpoint(*args)
    state = json.load(open(state_path))
    assert state["epoch"] == 0 and state["step"] % 7 == 0 and 7 <= state["step"] < 400
    config_before = open(os.path.join(run, "config.json")).read()

    result = train_cli(*args[:-len(TINY)], *TINY, "--epochs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert f"and {state['step']} steps" in result.stderr
    assert report["optimizer_steps"] == 400  # the interrupted epoch finished with the steps it lacked
    finished = json.load(open(state_path))
    assert finished["epoch"] == 1 and "step" not in finished
    assert open(os.path.join(run, "config.json")).read() == config_before


def test_init_from_a_generator_file_starts_from_its_weights(scans, tmp_path):
    """--init takes a .keras file too (a shipped default, say): its architecture and weights, fine-tuned."""
    initial = random_generator(filters=4, blocks=1, seed=3)
    initial.save(str(tmp_path / "start.keras"))
    out = str(tmp_path / "run")
    train(TrainConfig(volumes=scans, out=out, init=str(tmp_path / "start.keras"), steps_per_epoch=1, epochs=1,
                      batch_size=2, patch_size=16, learning_rate=1e-4))
    tuned = load_generator(os.path.join(out, "last_generator.keras"))
    assert (tuned.filters, tuned.blocks) == (4, 1)  # not TrainConfig's default architecture
    change = max(np.abs(a - b).max() for a, b in zip(tuned.get_weights(), initial.get_weights()))
    assert 0 < change < 1e-3  # one small Adam step from the file's weights (random ones differ by ~0.05)


def test_consistent_input_is_recorded_in_the_generator_and_never_dropped_silently(scans, tmp_path):
    """A plain-input generator may be fine-tuned onto consistent thin-to-thick inputs (and then carries the flag
    that makes inference build them); fine-tuning a consistent one without --consistent-input is refused."""
    random_generator(filters=4, blocks=1, seed=3).save(str(tmp_path / "plain.keras"))
    out = str(tmp_path / "run")
    settings = dict(volumes=scans, steps_per_epoch=1, epochs=1, batch_size=2, patch_size=16, learning_rate=1e-4,
                    criterion="thin-to-thick")
    train(TrainConfig(out=out, init=str(tmp_path / "plain.keras"), consistent_input=True, **settings))
    tuned = os.path.join(out, "last_generator.keras")
    assert load_generator(tuned).consistent_input
    with pytest.raises(InputError, match="was trained on consistent thin-to-thick inputs: give --consistent-input"):
        train(TrainConfig(out=str(tmp_path / "again"), init=tuned, **settings))


def test_flow_input_is_recorded_in_the_generator_and_never_dropped_silently(scans, tmp_path):
    """A spline-input generator may be fine-tuned onto flow-guided inputs (and then carries the flag that makes
    inference build them); fine-tuning a flow one without --flow-input is refused (shards: tests/model/
    test_train_cli.py, where the shard set decides)."""
    random_generator(filters=4, blocks=1, seed=3).save(str(tmp_path / "plain.keras"))
    out = str(tmp_path / "run")
    settings = dict(volumes=scans, steps_per_epoch=1, epochs=1, batch_size=2, patch_size=16, learning_rate=1e-4)
    train(TrainConfig(out=out, init=str(tmp_path / "plain.keras"), flow_input=True, **settings))
    tuned = os.path.join(out, "last_generator.keras")
    assert load_generator(tuned).flow_input
    with pytest.raises(InputError, match="was trained on flow-guided inputs: give --flow-input"):
        train(TrainConfig(out=str(tmp_path / "again"), init=tuned, **settings))


def test_slice_dilations_grow_the_init_generator_and_deeper_patches_train_it(scans, tmp_path):
    """--init FILE --slice-dilations 2: the file's weights plus a reach block that starts as the identity,
    trained on pairs longer along the slice axis than in-plane (--patch-depth)."""
    initial = random_generator(filters=4, blocks=1, seed=3)
    initial.save(str(tmp_path / "start.keras"))
    out = str(tmp_path / "run")
    train(TrainConfig(volumes=scans, out=out, init=str(tmp_path / "start.keras"), slice_dilations=[2],
                      steps_per_epoch=2, epochs=1, batch_size=2, patch_size=16, patch_depth=24, loss_margin=2,
                      learning_rate=1e-4))
    tuned = load_generator(os.path.join(out, "last_generator.keras"))
    assert (tuned.filters, tuned.blocks, tuned.slice_dilations) == (4, 1, (2,))
    x = np.random.default_rng(0).random((1, 24, 16, 16, 1), dtype=np.float32)
    before, after = initial({"image": x, "scale": np.float32(4)}), tuned({"image": x, "scale": np.float32(4)})
    assert 0 < np.abs(np.asarray(after) - np.asarray(before)).max() < 0.05  # two small steps from the file's output
    with open(os.path.join(out, "config.json"), encoding="utf-8") as handle:
        assert json.load(handle)["patch_depth"] == 24
