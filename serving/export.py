"""One SavedModel per scale for TensorFlow Serving: `BASE/soupgan_x<s>/<version>/`, thick-slice volume in raw
intensities in, thin-slice volume in the same units out.

Everything a client would otherwise have to know runs in the graph (`pipeline.graph_ops`): the [p0.5, p99.5]
window of the whole thick volume, normalisation, the generator's input along the slice axis (the first axis):
the cubic spline, or for a `flow_input` generator the flow-guided interpolation (`pipeline.graph_flow`, TV-L1
in TF ops), slab means restored for a generator trained with `consistent_input`; the edge padding by the
receptive field that in-process inference gives (`model.super_resolve`), the generator at the model's one
scalar scale (a fractional scale interpolates the neighbouring parameters, paper Eq. 3; never the
every-kernel path), the inverse normalisation, so CT stays in HU, and data
consistency (`pipeline.consistency`: thin-to-thin's measured slices put back as measured, thin-to-thick's slab
means restored to the thick slices; per voxel column, so in-plane tiles stay exact). Bad requests
(fewer than 2 slices, non-finite voxels, an output over the voxel limit) fail with INVALID_ARGUMENT before
any large allocation. Signatures:
- `serving_default`: {"volume": [Z, H, W] float32} → {"volume": [Z', H, W] float32};
- `with_window`: the same plus {"window": [2] float32}, the whole volume's (low, high) window, for clients
  that send in-plane tiles of a volume too large for one message (the slice axis stays whole, so the cubic
  prefilter is exact per tile; a flow-input generator's flow is estimated per tile, so tiles there are close
  to, not equal to, one call).
Each version is written beside its final name and renamed, so a polling server never sees half a model.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from model.generator import SoupGenerator
from model.super_resolve import check_scale
from pipeline.config import THIN_TO_THIN
from pipeline.errors import InputError
from pipeline.graph_flow import flow_upsample_tf
from pipeline.graph_ops import (denormalize_tf, make_consistent_tf, normalize_tf, pad_edges_tf, robust_window_tf,
                                upsample_tf)

DEFAULT_MAX_VOXELS = 200_000_000  # output voxels per request: 0.8 GB of float32 out, ~13 GB of activations
WARMUP_SHAPE = (6, 48, 48)
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MODEL_CARD_FILE = os.path.join("assets.extra", "model_card.json")


def model_name(scale: float) -> str:
    """`soupgan_x4`, `soupgan_x2.5`: the servable's name for one scale."""
    return f"soupgan_x{scale:g}"


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    name: str
    scale: float
    version: int
    path: str


def serving_function(generator: SoupGenerator, scale: float, criterion: str, max_voxels: int):
    """(volume, low, high) → thin-slice volume, with the request checks; traced into the SavedModel."""
    scale = check_scale(generator, scale)
    radius = generator.receptive_field
    core = tuple(slice(r, -r if r else None) for r in radius)

    def run(volume: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
        slices = tf.shape(volume)[0]
        checks = [
            tf.debugging.assert_greater_equal(slices, 2, message="need at least 2 slices along axis 0"),
            tf.debugging.assert_greater(tf.size(volume), 0, message="empty volume"),
            tf.debugging.assert_less_equal(
                tf.cast(tf.size(volume), tf.float64) * scale, tf.constant(max_voxels, tf.float64),
                message=f"the thin-slice output would exceed {max_voxels} voxels; send in-plane tiles"),
            tf.debugging.assert_all_finite(volume, "the volume holds NaN or infinite values"),
        ]
        with tf.control_dependencies(checks):
            thick = normalize_tf(volume, low, high)
        if generator.flow_input:
            upsampled = flow_upsample_tf(thick, scale, criterion)
        else:
            upsampled = upsample_tf(thick, scale, criterion, axis=0)
        if generator.consistent_input:
            upsampled = make_consistent_tf(upsampled, thick, scale, criterion)
        image = pad_edges_tf(upsampled, [(r, r) for r in radius])[None, ..., None]
        output = generator({"image": image, "scale": tf.constant(scale, tf.float32)}, training=False)[0, ..., 0]
        return make_consistent_tf(denormalize_tf(output[core], low, high), volume, scale, criterion)

    def default(volume):
        low, high = robust_window_tf(volume)
        return {"volume": run(volume, low, high)}

    def with_window(volume, window):
        tf.debugging.assert_all_finite(window, "the window holds NaN or infinite values")
        return {"volume": run(volume, window[0], window[1])}

    return default, with_window


def _write_warmup(path: str, name: str) -> None:
    """A PredictionLog TFRecord with one small request per signature, which TF Serving replays on load."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    volume = np.random.default_rng(0).normal(100.0, 20.0, WARMUP_SHAPE).astype(np.float32)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in (("serving_default", {"volume": volume}),
                                  ("with_window", {"volume": volume, "window": np.array([60.0, 140.0], np.float32)})):
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def versions(model_base: str) -> list[int]:
    """The numeric version folders of one model, ascending (what TF Serving loads; staging folders are not)."""
    return sorted(int(name) for name in os.listdir(model_base) if name.isdigit()) if os.path.isdir(model_base) else []


def next_version(model_base: str) -> int:
    """One more than the highest version (1 for a new model)."""
    return max(versions(model_base), default=0) + 1


def export_scale(generator: SoupGenerator, base: str, scale: float, criterion: str = THIN_TO_THIN,
                 version: int | None = None, max_voxels: int = DEFAULT_MAX_VOXELS,
                 card: dict | None = None) -> ExportedModel:
    """Write `base/soupgan_x<s>/<version>/` atomically and return where it went."""
    name = model_name(scale)
    model_base = os.path.join(base, name)
    version = next_version(model_base) if version is None else int(version)
    final = os.path.join(model_base, str(version))
    if os.path.exists(final):
        raise InputError(f"{final} exists: versions are immutable, choose another --version")
    default, with_window = serving_function(generator, scale, criterion, max_voxels)
    archive = keras.export.ExportArchive()
    archive.track(generator)
    volume_spec = tf.TensorSpec([None, None, None], tf.float32, name="volume")
    archive.add_endpoint("serving_default", default, input_signature=[volume_spec])
    archive.add_endpoint("with_window", with_window,
                         input_signature=[volume_spec, tf.TensorSpec([2], tf.float32, name="window")])
    os.makedirs(model_base, exist_ok=True)
    staging = os.path.join(model_base, f".staging-{version}-{os.getpid()}")  # not numeric: servers skip it
    try:
        archive.write_out(staging, verbose=False)
        _write_warmup(os.path.join(staging, WARMUP_FILE), name)
        with open(os.path.join(staging, MODEL_CARD_FILE), "w", encoding="utf-8") as handle:
            json.dump({**(card or {}), "model": name, "scale": scale, "criterion": criterion, "version": version,
                       "max_output_voxels": max_voxels, "receptive_radius": generator.receptive_radius,
                       "receptive_field": list(generator.receptive_field),
                       "flow_input": generator.flow_input, "consistent_input": generator.consistent_input,
                       "input": "thick-slice volume [Z, H, W] float32, raw intensities, slice axis first",
                       "output": "thin-slice volume [Z', H, W] float32, same units"}, handle, indent=2)
        os.replace(staging, final)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return ExportedModel(name, scale, version, final)


def write_models_config(base: str, names: list[str], serving_base: str | None = None) -> str:
    """`base/models.config`: a model_config_list for tensorflow_model_server --model_config_file; base paths
    under `serving_base` (where the server sees `base`, e.g. a container mount) or `base` itself."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(set(names) | _existing_models(base)):
        entry = config.model_config_list.config.add()
        root = serving_base if serving_base else os.path.abspath(base)
        entry.name, entry.base_path, entry.model_platform = name, f"{root.rstrip('/')}/{name}", "tensorflow"
    path = os.path.join(base, "models.config")
    _write_text_atomic(path, text_format.MessageToString(config))
    return path


def write_batching_parameters(base: str) -> str:
    """`base/batching_parameters.txt` for --enable_batching: requests of one shape batch together; volumes
    differ in shape, so batches stay small and the timeout short."""
    path = os.path.join(base, "batching_parameters.txt")
    _write_text_atomic(path, "max_batch_size { value: 4 }\nbatch_timeout_micros { value: 2000 }\n"
                             "num_batch_threads { value: 4 }\nmax_enqueued_batches { value: 16 }\n"
                             "pad_variable_length_inputs: false\n")
    return path


def _existing_models(base: str) -> set[str]:
    return {name for name in os.listdir(base) if name.startswith("soupgan_x") and os.path.isdir(os.path.join(base, name))}


def _write_text_atomic(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
