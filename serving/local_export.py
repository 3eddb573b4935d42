"""Run an export folder (`soupgan export`'s BASE) in-process with TensorFlow's own loader: what
`soupgan upsample --model EXPORT` does without a server. The model's card must name the criterion asked
for; a volume over the call's voxel budget goes in the same parts as the gRPC client sends
(`serving.tiling`), with the result of one call."""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from model.inference.super_resolve import thin_volume
from pipeline.errors import InputError
from pipeline.volume import Volume
from serving.export import MODEL_CARD_FILE, MODEL_PREFIX, legacy_model_name, model_name, versions
from serving.tiling import PART_OUTPUT_VOXELS, upsample_in_parts

LOCAL_OUTPUT_VOXELS = PART_OUTPUT_VOXELS  # per graph call
LEGACY_OUTPUT_VOXELS = 8_000_000  # per call of a 0.2.0 export: its graph runs the generator on the whole call


def is_export(path: str) -> bool:
    return os.path.isdir(path) and any(name.startswith(MODEL_PREFIX) for name in os.listdir(path))


def latest_version(base: str, scale: float, criterion: str) -> str:
    """The newest version of the model for this scale and criterion; an export from before 0.3.0 (named by
    scale only) is taken when its card names the criterion."""
    for name in (model_name(scale, criterion), legacy_model_name(scale)):
        found = versions(os.path.join(base, name))
        if found:
            return os.path.join(base, name, str(found[-1]))
    exported = sorted(name for name in os.listdir(base) if name.startswith(MODEL_PREFIX))
    raise InputError(f"{base}: no {model_name(scale, criterion)} export (it holds {', '.join(exported)})")


def read_card(path: str) -> dict:
    """The card of one exported version, with the fields exports before 0.3.0 wrote under other names."""
    with open(os.path.join(path, MODEL_CARD_FILE), encoding="utf-8") as handle:
        card = json.load(handle)
    card.setdefault("input_kind", "flow-guided" if card.get("flow_input") else "spline")
    card.setdefault("receptive_field", [card["receptive_radius"]] * 3)
    return card


def upsample_with_export(volume: Volume, base: str, scale: float, criterion: str, axis: int | None = None) -> Volume:
    path = latest_version(base, scale, criterion)
    card = read_card(path)
    if card["criterion"] != criterion:
        raise InputError(f"{path}: exported for {card['criterion']}, not {criterion}")
    signatures = tf.saved_model.load(path).signatures

    def run(thick, window):
        if window is None:
            return signatures["serving_default"](volume=tf.constant(thick))["volume"].numpy()
        return signatures["with_window"](volume=tf.constant(thick), window=tf.constant(window))["volume"].numpy()

    axis = volume.slice_axis(axis)
    budget = min(int(card["max_output_voxels"]), LOCAL_OUTPUT_VOXELS if "format" in card else LEGACY_OUTPUT_VOXELS)
    try:
        thin = upsample_in_parts(np.moveaxis(volume.data, axis, 0), scale, criterion, run, budget, card)
    except tf.errors.InvalidArgumentError as err:
        raise InputError(f"{path}: {err.message.splitlines()[0]}") from None
    return thin_volume(volume, thin, scale, criterion, axis)
