"""SavedModels per scale: a fresh process loads each and gets what in-process whole-volume inference gives (CT in
HU), INVALID_ARGUMENT for bad requests, atomic immutable versions, and the TF Serving files parse."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from model.networks.generator import average_generators, load_generator
from model.weights.model_source import default_generator_path
from model.inference.super_resolve import super_resolve
from pipeline.errors import InputError
from pipeline.volume import Volume
from serving.export import WARMUP_FILE, export_scale, write_models_config
from serving.tiling import upsample_in_parts
from tests.conftest import phantom
from tests.test_cli import ROOT, soupgan
from tests.generators import random_generator

SCALES = (2.0, 2.5, 4.0)


def thick_ct():
    """Slice axis first, HU: what a client sends."""
    return Volume(np.moveaxis(phantom((36, 30, 9)) * 1.2 - 1000.0, 2, 0), np.diag([5.0, 0.7, 0.7, 1.0]), "CT")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    generator = random_generator()
    base = str(tmp_path_factory.mktemp("export"))
    models = [export_scale(generator, base, scale, "thin-to-thick", max_voxels=50_000, card={"note": "test"})
              for scale in SCALES]
    write_models_config(base, [m.name for m in models])
    return generator, base, models


def test_a_fresh_process_gets_in_process_inference_for_every_scale(exported, tmp_path):
    generator, base, models = exported
    volume = thick_ct()
    np.save(tmp_path / "thick.npy", volume.data)
    script = ("import sys, numpy as np, tensorflow as tf\n"
              "volume = tf.constant(np.load(sys.argv[1]))\n"
              "for i, path in enumerate(sys.argv[3:]):\n"
              "    out = tf.saved_model.load(path).signatures['serving_default'](volume=volume)['volume']\n"
              "    np.save(f'{sys.argv[2]}/out{i}.npy', out.numpy())\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "thick.npy"), str(tmp_path), *[m.path for m in models]],
                   check=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for i, model in enumerate(models):
        served = np.load(tmp_path / f"out{i}.npy")
        expected = super_resolve(volume, generator, model.scale, "thin-to-thick", axis=0).data
        assert served.shape == expected.shape
        assert np.abs(served - expected).max() <= 1e-4 * np.ptp(expected)
        assert served.min() < -990  # Hounsfield units


def test_a_saved_weight_average_exports_and_serves_what_it_computes(tmp_path):
    """A generator made without a training call (a weight average, a float32 copy) must trace for export too."""
    path = str(tmp_path / "average.keras")
    average_generators([random_generator(seed=0), random_generator(seed=1)]).save(path)
    generator = load_generator(path)
    model = export_scale(generator, str(tmp_path / "base"), 2.0, "thin-to-thick", max_voxels=50_000, card={})
    volume = thick_ct()
    served = tf.saved_model.load(model.path).signatures["serving_default"](volume=tf.constant(volume.data))["volume"]
    expected = super_resolve(volume, generator, 2.0, "thin-to-thick", axis=0).data
    assert np.abs(served.numpy() - expected).max() <= 1e-4 * np.ptp(expected)


@pytest.mark.parametrize("scale", [3.0, 2.5])
def test_a_generator_trained_on_consistent_inputs_is_served_on_them(scale, tmp_path):
    generator = random_generator()
    generator.consistent_input = True
    model = export_scale(generator, str(tmp_path / "base"), scale, "thin-to-thick", max_voxels=50_000, card={})
    volume = thick_ct()
    served = tf.saved_model.load(model.path).signatures["serving_default"](volume=tf.constant(volume.data))["volume"]
    expected = super_resolve(volume, generator, scale, "thin-to-thick", axis=0).data
    assert np.abs(served.numpy() - expected).max() <= 1e-4 * np.ptp(expected)
    generator.consistent_input = False  # in-process inference on the plain spline would differ
    assert np.abs(super_resolve(volume, generator, scale, "thin-to-thick", axis=0).data - expected).max() > 1.0


@pytest.mark.slow
@pytest.mark.parametrize("criterion, scale, consistent", [("thin-to-thin", 3.0, False), ("thin-to-thick", 2.5, True)])
def test_a_generator_trained_on_flow_guided_inputs_is_served_on_them(criterion, scale, consistent, tmp_path):
    """The graph estimates TV-L1 flow and warps as `pipeline.method.slice_flow` does (two pyramid levels at 70 × 76)."""
    generator = random_generator()
    generator.flow_input, generator.consistent_input = True, consistent
    model = export_scale(generator, str(tmp_path / "base"), scale, criterion, max_voxels=500_000, card={})
    card = json.load(open(os.path.join(model.path, "assets.extra", "model_card.json")))
    assert card["flow_input"] and card["consistent_input"] == consistent
    volume = Volume(np.moveaxis(phantom((70, 76, 8)) * 1.2 - 1000.0, 2, 0), np.diag([4.0, 0.8, 0.8, 1.0]), "CT")
    served = tf.saved_model.load(model.path).signatures["serving_default"](volume=tf.constant(volume.data))["volume"]
    expected = super_resolve(volume, generator, scale, criterion, axis=0).data
    error = np.abs(served.numpy() - expected).max() / np.ptp(expected)
    assert error <= 5e-4, error  # float32 TV-L1 against SciPy's float64 warps: 1.2e-4 and 4e-5 measured
    generator.flow_input = False  # the same weights on the spline input: another result
    assert np.abs(super_resolve(volume, generator, scale, criterion, axis=0).data - expected).max() > 1.0


def test_a_thin_to_thin_export_keeps_the_measured_slices_as_in_process_inference_does(tmp_path):
    generator = random_generator()
    model = export_scale(generator, str(tmp_path), 2.5, "thin-to-thin", max_voxels=50_000)
    volume = thick_ct()
    served = tf.saved_model.load(model.path).signatures["serving_default"](volume=tf.constant(volume.data))["volume"]
    expected = super_resolve(volume, generator, 2.5, "thin-to-thin", axis=0).data
    assert np.abs(served.numpy() - expected).max() <= 1e-4 * np.ptp(expected)
    np.testing.assert_array_equal(served.numpy()[::5], volume.data[::2])


def test_with_window_takes_the_clients_window(exported):
    generator, _, models = exported
    signature = tf.saved_model.load(models[0].path).signatures["with_window"]
    volume = thick_ct()
    whole = tf.saved_model.load(models[0].path).signatures["serving_default"](volume=tf.constant(volume.data))["volume"]
    low, high = np.percentile(volume.data, [0.5, 99.5], method="lower")
    windowed = signature(volume=tf.constant(volume.data), window=tf.constant([low, high], tf.float32))["volume"]
    np.testing.assert_allclose(windowed.numpy(), whole.numpy(), atol=1e-4 * np.ptp(whole.numpy()))


@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 8, 8), np.float32), "at least 2 slices"),
    (np.full((3, 8, 8), np.nan, np.float32), "NaN or infinite"),
    (np.zeros((40, 40, 40), np.float32), "exceed 50000 voxels"),
])
def test_bad_requests_are_invalid_argument(exported, bad, message):
    signature = tf.saved_model.load(exported[2][0].path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signature(volume=tf.constant(bad))


def test_serving_files_parse_and_versions_are_atomic_and_immutable(exported):
    generator, base, models = exported
    config = text_format.Parse(open(os.path.join(base, "models.config")).read(),
                               model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c.base_path for c in config.model_config_list.config}
    assert entries == {m.name: os.path.dirname(m.path) for m in models}
    assert set(entries) == {"soupgan_thin_to_thick_x2", "soupgan_thin_to_thick_x2.5", "soupgan_thin_to_thick_x4"}
    records = list(tf.data.TFRecordDataset(os.path.join(models[1].path, WARMUP_FILE)).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(record) for record in records]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == {"serving_default", "with_window"}
    assert all(log.predict_log.request.model_spec.name == "soupgan_thin_to_thick_x2.5" for log in logs)
    request = logs[0].predict_log.request
    signature = tf.saved_model.load(models[1].path).signatures["serving_default"]
    assert signature(volume=tf.constant(tf.make_ndarray(request.inputs["volume"])))["volume"].shape[0] == 15  # 6 slabs × 2.5, thin-to-thick
    card = json.load(open(os.path.join(models[1].path, "assets.extra", "model_card.json")))
    assert card["scale"] == 2.5 and card["criterion"] == "thin-to-thick" and card["note"] == "test"
    with pytest.raises(InputError, match="versions are immutable"):
        export_scale(generator, base, 2.0, "thin-to-thick", version=1)
    assert export_scale(generator, base, 2.0, "thin-to-thick").version == 2
    assert sorted(os.listdir(os.path.join(base, "soupgan_thin_to_thick_x2"))) == ["1", "2"]  # no staging folder left


@pytest.mark.slow
def test_export_cli_writes_every_scale_with_the_default_weights(tmp_path):
    result = soupgan("export", "--out", tmp_path / "base", "--scales", "3,2.5", "--serving-base", "/models")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [m["name"] for m in summary["exported"]] == ["soupgan_thin_to_thin_x2.5", "soupgan_thin_to_thin_x3"]
    card = json.load(open(tmp_path / "base" / "soupgan_thin_to_thin_x3" / "1" / "assets.extra" / "model_card.json"))
    shipped = json.load(open(os.path.join(ROOT, "model", "default_weights", "model_card.json")))["models"]["thin-to-thin"]
    assert card["source"] == "soupgan default weights" and card["generator_sha256"] == shipped["sha256"]
    volume = thick_ct()  # the shipped flow-input generator, served with its flow-guided input in the graph
    served = tf.saved_model.load(str(tmp_path / "base" / "soupgan_thin_to_thin_x3" / "1")).signatures["serving_default"](
        volume=tf.constant(volume.data))["volume"].numpy()
    expected = super_resolve(volume, load_generator(default_generator_path("thin-to-thin")), 3.0, "thin-to-thin",
                             axis=0).data
    assert np.abs(served - expected).max() <= 5e-4 * np.ptp(expected)
    assert not (tmp_path / "base" / "batching_parameters.txt").exists()  # whole volumes are not batches
    config = text_format.Parse((tmp_path / "base" / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [c.base_path for c in config.model_config_list.config] == ["/models/soupgan_thin_to_thin_x2.5",
                                                                      "/models/soupgan_thin_to_thin_x3"]
    both = soupgan("export", "--out", tmp_path / "base", "--scales", "3", "--criterion", "thin-to-thick")
    assert both.returncode == 0, both.stderr  # the other criterion serves beside it from the same models.config
    config = text_format.Parse((tmp_path / "base" / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["soupgan_thin_to_thick_x3", "soupgan_thin_to_thin_x2.5",
                                                                 "soupgan_thin_to_thin_x3"]
    bad = soupgan("export", "--out", tmp_path / "base", "--scales", "7")
    assert bad.returncode == 2 and "outside the model's range" in bad.stderr.strip().splitlines()[-1]


def test_an_exported_default_names_the_data_its_own_generator_was_trained_on():
    from model.weights.model_source import DEFAULT_WEIGHTS, model_card
    from soupgan.commands.export import source_card

    card = model_card()
    for criterion in ("thin-to-thin", "thin-to-thick"):
        entry = card["models"][criterion]
        exported = source_card(None, criterion, os.path.join(DEFAULT_WEIGHTS, entry["file"]))
        assert exported["generator_sha256"] == entry["sha256"] and exported["measured"] == entry
        assert exported["training_data"] == entry.get("provenance", card)["training_data"]


def test_an_export_runs_in_process_tiled_or_whole_with_the_same_result(exported, monkeypatch):
    import serving.local_export as local_export

    generator, base, _ = exported
    volume = Volume(phantom((40, 36, 9)) * 1.2 - 1000.0, np.diag([0.7, 0.7, 5.0, 1.0]), "CT")
    expected = super_resolve(volume, generator, 2.5, "thin-to-thick")
    whole = local_export.upsample_with_export(volume, base, 2.5, "thin-to-thick")
    monkeypatch.setattr(local_export, "LOCAL_OUTPUT_VOXELS", 22 * 24 * 24)  # forces in-plane tiles
    tiled = local_export.upsample_with_export(volume, base, 2.5, "thin-to-thick")
    for result in (whole, tiled):
        np.testing.assert_allclose(result.affine, expected.affine)
        assert np.abs(result.data - expected.data).max() <= 1e-4 * np.ptp(expected.data)
    with pytest.raises(InputError, match="no soupgan_thin_to_thin_x2.5 export .*it holds soupgan_thin_to_thick_x2, "):
        local_export.upsample_with_export(volume, base, 2.5, "thin-to-thin")
    with pytest.raises(InputError, match="no soupgan_thin_to_thick_x3 export"):
        local_export.upsample_with_export(volume, base, 3, "thin-to-thick")


def test_a_slice_reach_export_tiles_in_plane_with_its_in_plane_halo(tmp_path, monkeypatch):
    """A generator dilated along the slice axis reaches further there than in-plane; its metadata says both, and
    in-plane tiles (the slice axis stays whole) need only the in-plane reach to equal one whole pass."""
    import serving.local_export as local_export

    generator = random_generator(slice_dilations=(3,))
    model = export_scale(generator, str(tmp_path), 2.0, "thin-to-thick", max_voxels=50_000)
    metadata = json.loads(tf.saved_model.load(model.path).signatures["metadata"]()["metadata"].numpy())
    assert metadata == {"format": "soupgan-servable/1", "criterion": "thin-to-thick", "scale": 2.0,
                        "receptive_field": [10, 6, 6], "receptive_radius": 10, "input_kind": "spline",
                        "consistent_input": False, "max_output_voxels": 50_000, "slice_axis": 0}
    volume = Volume(phantom((40, 36, 9)) * 1.2 - 1000.0, np.diag([0.7, 0.7, 5.0, 1.0]), "CT")
    expected = super_resolve(volume, generator, 2.0, "thin-to-thick")
    monkeypatch.setattr(local_export, "LOCAL_OUTPUT_VOXELS", 18 * 22 * 22)  # forces in-plane tiles
    tiled = local_export.upsample_with_export(volume, str(tmp_path), 2.0, "thin-to-thick")
    assert np.abs(tiled.data - expected.data).max() <= 1e-4 * np.ptp(expected.data)


def test_an_export_from_before_criterion_names_still_runs_locally(exported, tmp_path):
    """0.2.0 named models by scale only (`soupgan_x2.5`) and carried the criterion in the card alone."""
    import serving.local_export as local_export

    generator, base, models = exported
    old = tmp_path / "old"
    shutil.copytree(os.path.dirname(models[1].path), old / "soupgan_x2.5")
    volume = Volume(phantom((40, 36, 9)) * 1.2 - 1000.0, np.diag([0.7, 0.7, 5.0, 1.0]), "CT")
    result = local_export.upsample_with_export(volume, str(old), 2.5, "thin-to-thick")
    expected = super_resolve(volume, generator, 2.5, "thin-to-thick")
    assert np.abs(result.data - expected.data).max() <= 1e-4 * np.ptp(expected.data)
    with pytest.raises(InputError, match="exported for thin-to-thick, not thin-to-thin"):
        local_export.upsample_with_export(volume, str(old), 2.5, "thin-to-thin")


@pytest.mark.parametrize("criterion, scale, dilations, slices", [
    ("thin-to-thin", 4.0, (2,), 23),
    ("thin-to-thick", 3.0, (2,), 23),
    ("thin-to-thick", 2.5, (1,), 23),  # reach 6: slab means couple pairs of thick slices, a halo of 6 is needed
    ("thin-to-thick", 5.5, (5,), 40),  # reach 14, as the shipped generators: a halo of 6 thick slices
])
@pytest.mark.slow
def test_a_flow_guided_export_in_slabs_equals_one_call(criterion, scale, dilations, slices, tmp_path, monkeypatch):
    """Slabs of whole slices keep the in-graph flow exact: parts under a small voxel budget give one call's result
    (thin-to-thick with slab means restored on the input too, as the shipped thin-to-thick generator takes it)."""
    import serving.local_export as local_export
    from serving.tiling import slab_alignment, slab_halo

    generator = random_generator(slice_dilations=dilations)
    generator.flow_input, generator.consistent_input = True, criterion == "thin-to-thick"
    export_scale(generator, str(tmp_path), scale, criterion, max_voxels=10_000_000)
    volume = Volume(phantom((40, 44, slices)) * 1.2 - 1000.0, np.diag([0.8, 0.8, 4.0, 1.0]), "CT")
    whole = local_export.upsample_with_export(volume, str(tmp_path), scale, criterion).data
    calls = []

    def counted(thick, scale, criterion, run, budget, card):
        def run_and_count(part, window):
            thin = run(part, window)
            calls.append(thin.shape)
            return thin

        return upsample_in_parts(thick, scale, criterion, run_and_count, budget, card)

    step = slab_alignment(scale)
    budget = int((2 * slab_halo(scale, generator.receptive_field[0]) + 2 * step) * scale) * 40 * 44  # cores of 2 steps
    monkeypatch.setattr(local_export, "LOCAL_OUTPUT_VOXELS", budget)
    monkeypatch.setattr(local_export, "upsample_in_parts", counted)
    parts = local_export.upsample_with_export(volume, str(tmp_path), scale, criterion).data
    assert len(calls) >= 3 and all(np.prod(shape) <= budget and shape[1:] == (40, 44) for shape in calls)
    assert parts.shape == whole.shape
    assert np.abs(parts - whole).max() <= 1e-5 * np.ptp(whole)
