"""`soupgan train --portable`: stage 1 with Keras fit on any backend, into the TensorFlow trainer's run-folder
layout, with resume after kill -9; where a JAX interpreter is given, a generator trained under JAX loads and
predicts the same under TensorFlow (tests/test_layering.py checks that the path imports no TensorFlow)."""
import glob
import gzip
import json
import os
import shutil
import subprocess

import keras
import numpy as np
import pytest

from model.networks.generator import load_generator
from model.training.inputs import training_dataset
from model.training.pixel_loss import PixelLoss
from model.training.portable_sources import PortableShardSource, RandomPairBatches
from model.training.portable_training import train_portable
from model.training.run_setup import pair_sampler_config
from model.training.train_config import TrainConfig
from pipeline.errors import InputError
from pipeline.data.random_pairs import RandomPairSampler
from soupgan import cli
from tests.model.train_cli import kill_after_first_checkpoint, train as train_cli
from tests.test_cli import ROOT

TINY = dict(filters=4, blocks=1, batch_size=2, patch_size=16, loss_margin=2, portable=True)
TINY_FLAGS = ["--portable", "--filters", "4", "--blocks", "1", "--batch-size", "2", "--patch-size", "16",
              "--loss-margin", "2"]


def test_run_folder_and_restart_with_the_optimizer_state(scans, tmp_path):
    out = str(tmp_path / "run")
    first = train_portable(TrainConfig(volumes=scans, out=out, steps_per_epoch=3, epochs=1,
                                       lr_schedule="cosine", pixel_loss="log-mse", **TINY))
    assert first["optimizer_steps"] == 3 and first["backend"] == "tensorflow" and np.isfinite(first["last"]["loss"])
    for name in ("config.json", "history.csv", "curves.png", "last_generator.keras", "best_generator.keras"):
        assert os.path.exists(os.path.join(out, name)), name
    assert json.load(open(os.path.join(out, "config.json")))["portable"] is True
    resumed = train_portable(TrainConfig(volumes=scans, out=out, steps_per_epoch=3, epochs=2,
                                         lr_schedule="cosine", pixel_loss="log-mse", **TINY))
    assert resumed["resumed_from"] == 1 and resumed["optimizer_steps"] == 6  # Adam's step count came back
    generator = load_generator(os.path.join(out, "last_generator.keras"))
    assert (generator.filters, generator.blocks) == (4, 1)
    with pytest.raises(InputError, match="holds a different run"):
        train_portable(TrainConfig(volumes=scans, out=out, steps_per_epoch=3, epochs=3, **TINY))


@pytest.mark.slow
def test_killed_run_resumes_mid_epoch(scans, tmp_path):
    args = ["--volumes", *scans, "--out", str(tmp_path / "killed"), "--epochs", "2", "--steps-per-epoch", "30",
            "--checkpoint-every", "5", *TINY_FLAGS]
    state = json.load(open(kill_after_first_checkpoint(*args)))
    assert state["epoch"] < 2
    result = train_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["optimizer_steps"] == 2 * 30


def test_batches_are_reproducible_and_each_drawn_once_over_the_epochs(scans):
    from pipeline.io.volume_io import read_volume

    sampler = RandomPairSampler([read_volume(path) for path in scans], pair_sampler_config(TrainConfig(**TINY)))
    a, b = RandomPairBatches(sampler, 2, 6, (0, 0, 0)), RandomPairBatches(sampler, 2, 6, (0, 0, 0))
    np.testing.assert_array_equal(a[1][1], b[1][1])
    assert not np.array_equal(a[1][1], a[2][1])
    # two epochs of three steps from one object: Keras asks for each of its six batches once, in order
    seen = []

    class ImagesOnly(keras.utils.PyDataset):  # the image alone as input, for a plain one-input model
        def __len__(self):
            return len(a)

        def __getitem__(self, index):
            seen.append(index)
            inputs, target = a[index]
            return inputs["image"], target

    model = keras.Sequential([keras.Input((16, 16, 16, 1)), keras.layers.Conv3D(1, 3, padding="same")])
    model.compile("sgd", "mse")
    model.fit(ImagesOnly(), epochs=2, steps_per_epoch=3, shuffle=False, verbose=0)
    assert seen[-6:] == list(range(6))  # (TensorFlow's adapter first peeks at a batch or two for their specs)


@pytest.mark.parametrize("extra, message", [
    (["--stage", "gan", "--init", "run"], "--portable trains stage 1 on one device"),
    (["--replicas", "2"], "--portable trains stage 1 on one device"),
    (["--data-workers", "-1"], "--data-workers must be >= 0"),
])
def test_what_it_does_not_do_is_a_one_line_error(scans, tmp_path, extra, message, capsys):
    argv = ["train", "--volumes", *scans, "--out", str(tmp_path / "run"), "--steps-per-epoch", "2", "--portable",
            *extra]
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


SHARD_TINY = dict(filters=4, blocks=1, batch_size=2, loss_margin=2, portable=True)


def test_trains_from_a_local_shard_set_validating_on_its_val_split(shard_set, tmp_path):
    out = str(tmp_path / "shards-run")
    result = train_portable(TrainConfig(data=shard_set, out=out, epochs=2, steps_per_epoch=3, **SHARD_TINY))
    assert result["monitor"] == "val_loss" and result["optimizer_steps"] == 6
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["flow_input"] is True and config["data"] == shard_set  # the inputs the manifest names
    generator = load_generator(os.path.join(out, "last_generator.keras"))
    assert generator.flow_input
    # its last val_loss is the loss over the TensorFlow trainer's validation pass (every pair, any order)
    val = training_dataset(shard_set, "val", 2, "thin-to-thin", 16, repeat=False)
    generator.compile(loss=PixelLoss("mse", 2))
    assert generator.evaluate(val, verbose=0) == pytest.approx(result["last"]["val_loss"], rel=1e-5)
    resumed = train_portable(TrainConfig(data=shard_set, out=out, epochs=3, steps_per_epoch=3, **SHARD_TINY))
    assert resumed["resumed_from"] == 2 and resumed["optimizer_steps"] == 9


def test_shard_batches_give_the_same_batch_for_an_index_however_they_are_asked(shard_set):
    source = PortableShardSource(TrainConfig(data=shard_set, out="unused", **SHARD_TINY))
    in_order = source.train(6, (0, 0, 0))
    batches = [in_order[i][1] for i in range(6)]
    jumping = source.train(6, (0, 0, 0))
    for index in (4, 0, 1, 5, 2):  # out of order: the stream restarts and skips
        np.testing.assert_array_equal(jumping[index][1], batches[index])
    assert not np.array_equal(source.train(6, (0, 1, 0))[0][1], batches[0])  # another resume point, another order
    validation = source.validation()
    first_pass = [validation[i][1] for i in range(len(validation))]
    np.testing.assert_array_equal(validation[0][1], first_pass[0])  # a new pass starts over
    assert inputs_shape(validation[0]) == (2, 16, 16, 16, 1)
    with pytest.raises(IndexError):
        validation[len(validation)]


def inputs_shape(batch):
    inputs, target = batch
    assert inputs["image"].shape == target.shape and inputs["scale"].shape == (2,)
    return inputs["image"].shape


def damaged_copy(shard_set, folder):
    """The shard set with one byte of its first train shard's first record changed (the CRC no longer matches)."""
    copy = shutil.copytree(shard_set, folder)
    shard = sorted(glob.glob(os.path.join(copy, "train", "*.tfrecord.gz")))[0]
    raw = bytearray(gzip.decompress(open(shard, "rb").read()))
    raw[100] ^= 0xFF
    open(shard, "wb").write(gzip.compress(bytes(raw)))
    return copy


def test_shard_set_errors_are_one_line(shard_set, tmp_path, capsys):
    damaged = damaged_copy(shard_set, str(tmp_path / "damaged"))
    for extra, message in ((["--data", "s3://bucket/set"], "copy the set to a local folder first"),
                           (["--data", shard_set, "--data-workers", "2"], "--data-workers is for --portable --volumes"),
                           (["--data", damaged, "--steps-per-epoch", "2", *TINY_FLAGS[1:3]],
                            "corrupt TFRecord data at record 0 (CRC mismatch)")):
        assert cli.main(["train", *extra, "--out", str(tmp_path / "run"), "--portable"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines


# Interpreters with that Keras backend, keras, nibabel, pydicom and matplotlib (TensorFlow not needed)
BACKEND_PYTHONS = {"jax": os.environ.get("SOUPGAN_JAX_PYTHON"), "torch": os.environ.get("SOUPGAN_TORCH_PYTHON")}


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(BACKEND_PYTHONS))
def test_a_generator_trained_under_another_backend_predicts_the_same_under_tensorflow(backend, scans, tmp_path):
    python = BACKEND_PYTHONS[backend]
    if not python:
        pytest.skip(f"set SOUPGAN_{backend.upper()}_PYTHON to an interpreter with {backend}, keras, nibabel, pydicom and matplotlib")
    out = str(tmp_path / f"{backend}-run")
    x = np.random.default_rng(0).random((1, 16, 16, 16, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    script = ("import sys, keras, numpy as np\n"
              "from soupgan import cli\n"
              "assert cli.main(sys.argv[1:-1]) == 0\n"
              "from model.networks.generator import load_generator\n"
              "g = load_generator(sys.argv[sys.argv.index('--out') + 1] + '/last_generator.keras')\n"
              "x = np.load(sys.argv[-1])\n"
              "y = keras.ops.convert_to_numpy(g({'image': x, 'scale': np.float32(3)}))\n"
              "np.save(sys.argv[-1].replace('x.npy', 'y.npy'), y)\n")
    # pairs drawn by a worker process, as the GPU recipe draws them (under JAX: started from a fork server)
    subprocess.run([python, "-c", script, "train", "--volumes", *scans, "--out", out, "--epochs", "1",
                    "--steps-per-epoch", "3", "--data-workers", "1", *TINY_FLAGS, str(tmp_path / "x.npy")],
                   check=True, cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT})
    assert json.load(open(os.path.join(out, "config.json")))["portable"] is True
    generator = load_generator(os.path.join(out, "last_generator.keras"))
    under_tf = generator({"image": x, "scale": np.float32(3)}).numpy()
    np.testing.assert_allclose(under_tf, np.load(tmp_path / "y.npy"), atol=1e-5)


@pytest.mark.slow
def test_a_shard_set_trains_under_jax_without_tensorflow(shard_set, tmp_path):
    python = BACKEND_PYTHONS["jax"]
    if not python:
        pytest.skip("set SOUPGAN_JAX_PYTHON to an interpreter with jax, keras, nibabel, pydicom, matplotlib, "
                    "protobuf and google-crc32c")
    out = str(tmp_path / "jax-shards-run")
    script = ("import sys\n"
              "from soupgan import cli\n"
              "assert cli.main(sys.argv[1:]) == 0\n"
              "assert 'tensorflow' not in sys.modules, 'the shard reader imported TensorFlow'\n")
    subprocess.run([python, "-c", script, "train", "--portable", "--data", shard_set, "--out", out, "--epochs", "2",
                    "--steps-per-epoch", "3", "--filters", "4", "--blocks", "1", "--batch-size", "2",
                    "--loss-margin", "2"],
                   check=True, cwd=ROOT, env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": ROOT})
    with open(os.path.join(out, "history.csv")) as handle:
        header, *rows = handle.read().split()
    assert "val_loss" in header.split(",") and len(rows) == 2
    assert load_generator(os.path.join(out, "best_generator.keras")).flow_input
