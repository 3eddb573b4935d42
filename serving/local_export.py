"""Run an export folder (`soupgan export`'s BASE) in-process with TensorFlow's own loader: what
`soupgan upsample --model EXPORT` does without a server. Large volumes go through the same in-plane tiling
as the gRPC client, bounded by a voxel budget per call."""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from model.super_resolve import thin_volume
from pipeline.errors import InputError
from pipeline.volume import Volume
from serving.export import MODEL_CARD_FILE, model_name, versions
from serving.tiling import upsample_tiled

LOCAL_OUTPUT_VOXELS = 8_000_000  # per graph call: a few GB of activations for the default generator


def is_export(path: str) -> bool:
    return os.path.isdir(path) and any(name.startswith("soupgan_x") for name in os.listdir(path))


def latest_version(base: str, scale: float) -> str:
    folder = os.path.join(base, model_name(scale))
    found = versions(folder)
    if not found:
        exported = sorted(name for name in os.listdir(base) if name.startswith("soupgan_x"))
        raise InputError(f"{base}: no {model_name(scale)} export (it holds {', '.join(exported)})")
    return os.path.join(folder, str(found[-1]))


def upsample_with_export(volume: Volume, base: str, scale: float, criterion: str, axis: int | None = None) -> Volume:
    path = latest_version(base, scale)
    with open(os.path.join(path, MODEL_CARD_FILE), encoding="utf-8") as handle:
        card = json.load(handle)
    if card["criterion"] != criterion:
        raise InputError(f"{path}: exported for {card['criterion']}, not {criterion}")
    signatures = tf.saved_model.load(path).signatures

    def run(thick, window):
        if window is None:
            return signatures["serving_default"](volume=tf.constant(thick))["volume"].numpy()
        return signatures["with_window"](volume=tf.constant(thick), window=tf.constant(window))["volume"].numpy()

    axis = volume.slice_axis(axis)
    budget = min(int(card["max_output_voxels"]), LOCAL_OUTPUT_VOXELS)
    try:
        thin = upsample_tiled(np.moveaxis(volume.data, axis, 0), scale, criterion, run, budget, in_plane_halo(card))
    except tf.errors.InvalidArgumentError as err:
        raise InputError(f"{path}: {err.message.splitlines()[0]}") from None
    return thin_volume(volume, thin, scale, criterion, axis)


def in_plane_halo(card: dict) -> int:
    """The in-plane context a tile needs (tiles keep the slice axis whole); exports before per-axis receptive
    fields carry only the overall radius, which is enough too."""
    return int(card["receptive_field"][1]) if "receptive_field" in card else int(card["receptive_radius"])
