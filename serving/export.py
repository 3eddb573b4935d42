"""One SavedModel per criterion and scale for TensorFlow Serving: `BASE/soupgan_<criterion>_x<s>/<version>/`
(e.g. `soupgan_thin_to_thin_x4`, so both criteria serve side by side from one models.config), thick-slice
volume in raw intensities in, thin-slice volume in the same units out.

Everything a client would otherwise have to know runs in the graph (`pipeline.graph.graph_ops`): the [p0.5, p99.5]
window of the whole thick volume, normalisation, the generator's input along the slice axis (the first axis):
the cubic spline, or for a `flow_input` generator the flow-guided interpolation on whole slices
(`pipeline.graph.graph_flow`, TV-L1 in TF ops), slab means restored for a generator trained with `consistent_input`;
the generator over tiles padded by its receptive field with the edge voxels (`serving.graph_tiles`: what
in-process inference computes, in one tile's memory), at the model's one scalar scale (a fractional scale
interpolates the neighbouring parameters, paper Eq. 3), the inverse normalisation, so CT stays in HU, and data
consistency (`pipeline.method.consistency`). Bad requests (fewer than 2 slices, non-finite voxels, an output over
the voxel limit) fail with INVALID_ARGUMENT before any large allocation. Signatures:
- `serving_default`: {"volume": [Z, H, W] float32} → {"volume": [Z', H, W] float32};
- `with_window`: the same plus {"window": [2] float32}, the whole volume's (low, high) window, for clients
  that send parts of a volume too large for one message (`serving.tiling`);
- `metadata`: no inputs → {"metadata": JSON string}: criterion, scale, receptive field, input kind, limits,
  which clients check before they send anything (`servable_metadata`).
The signatures take one whole volume, not a batch: TF Serving's `--enable_batching` concatenates requests
along dim 0 and fails a whole batch when two volumes differ in shape, so exports ship no batching file.
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

from model.networks.generator import SoupGenerator
from model.inference.super_resolve import check_scale
from pipeline.config import THIN_TO_THIN
from pipeline.errors import InputError
from pipeline.graph.graph_flow import flow_upsample_tf
from pipeline.graph.graph_ops import denormalize_tf, make_consistent_tf, normalize_tf, robust_window_tf, upsample_tf
from serving.graph_tiles import generate_in_tiles

DEFAULT_MAX_VOXELS = 200_000_000  # output voxels a request may ask for (~40 bytes each at the server: 8 GB)
SERVED_TILE = (64, 128, 128)  # the graph's tile cores, slice axis first: a request's activations are one tile's
WARMUP_SHAPE = (6, 48, 48)
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MODEL_CARD_FILE = os.path.join("assets.extra", "model_card.json")
METADATA_FORMAT = "soupgan-servable/1"
MODEL_PREFIX = "soupgan_"


def model_name(scale: float, criterion: str) -> str:
    """`soupgan_thin_to_thin_x4`, `soupgan_thin_to_thick_x2.5`: the servable's name for one criterion and scale."""
    return f"{MODEL_PREFIX}{criterion.replace('-', '_')}_x{scale:g}"


def legacy_model_name(scale: float) -> str:
    """`soupgan_x4`: the name exports before 0.3.0 gave, without the criterion (read locally from their card)."""
    return f"{MODEL_PREFIX}x{scale:g}"


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    name: str
    scale: float
    version: int
    path: str


def servable_metadata(generator: SoupGenerator, scale: float, criterion: str, max_voxels: int) -> dict:
    """What a client must know before it sends a volume: what the model computes and how far it reaches."""
    return {"format": METADATA_FORMAT, "criterion": criterion, "scale": float(scale),
            "receptive_field": [int(r) for r in generator.receptive_field],
            "receptive_radius": int(generator.receptive_radius),
            "input_kind": "flow-guided" if generator.flow_input else "spline",
            "consistent_input": bool(generator.consistent_input), "max_output_voxels": int(max_voxels),
            "slice_axis": 0}


def serving_function(generator: SoupGenerator, scale: float, criterion: str, max_voxels: int):
    """(volume, low, high) → thin-slice volume, with the request checks; traced into the SavedModel."""
    scale = check_scale(generator, scale)

    def run(volume: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
        slices = tf.shape(volume)[0]
        checks = [
            tf.debugging.assert_greater_equal(slices, 2, message="need at least 2 slices along axis 0"),
            tf.debugging.assert_greater(tf.size(volume), 0, message="empty volume"),
            tf.debugging.assert_less_equal(
                tf.cast(tf.size(volume), tf.float64) * scale, tf.constant(max_voxels, tf.float64),
                message=f"the thin-slice output would exceed {max_voxels} voxels; send it in parts"),
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
        output = generate_in_tiles(generator, upsampled, scale, SERVED_TILE)
        return make_consistent_tf(denormalize_tf(output, low, high), volume, scale, criterion)

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
    """Write `base/soupgan_<criterion>_x<s>/<version>/` atomically and return where it went."""
    name = model_name(scale, criterion)
    model_base = os.path.join(base, name)
    version = next_version(model_base) if version is None else int(version)
    final = os.path.join(model_base, str(version))
    if os.path.exists(final):
        raise InputError(f"{final} exists: versions are immutable, choose another --version")
    default, with_window = serving_function(generator, scale, criterion, max_voxels)
    metadata = servable_metadata(generator, scale, criterion, max_voxels)
    archive = keras.export.ExportArchive()
    archive.track(generator)
    volume_spec = tf.TensorSpec([None, None, None], tf.float32, name="volume")
    archive.add_endpoint("serving_default", default, input_signature=[volume_spec])
    archive.add_endpoint("with_window", with_window,
                         input_signature=[volume_spec, tf.TensorSpec([2], tf.float32, name="window")])
    archive.add_endpoint("metadata", lambda: {"metadata": tf.constant(json.dumps(metadata, sort_keys=True))},
                         input_signature=[])
    os.makedirs(model_base, exist_ok=True)
    staging = os.path.join(model_base, f".staging-{version}-{os.getpid()}")  # not numeric: servers skip it
    try:
        archive.write_out(staging, verbose=False)
        _write_warmup(os.path.join(staging, WARMUP_FILE), name)
        with open(os.path.join(staging, MODEL_CARD_FILE), "w", encoding="utf-8") as handle:
            json.dump({**(card or {}), "model": name, "version": version, **metadata,
                       "flow_input": generator.flow_input,
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


def _existing_models(base: str) -> set[str]:
    return {name for name in os.listdir(base) if name.startswith(MODEL_PREFIX) and os.path.isdir(os.path.join(base, name))}


def _write_text_atomic(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
