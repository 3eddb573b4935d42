"""Where a generator comes from: the shipped default weights (sha256-checked), a training run folder, or a
`.keras` file; each checked against the degradation criterion it is asked to undo.

The defaults live in `model/default_weights/`: one `.keras` per criterion and `model_card.json`, which
names each file with its sha256, how it was trained and its measured quality (`provenance`: the card's recipe,
or an entry's own where a later run that refined the other generator kept it).
"""
from __future__ import annotations

import hashlib
import json
import os

from model.networks.generator import SoupGenerator, load_generator
from model.weights.run_dir import RunDirectory
from pipeline.errors import InputError

DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "default_weights")
MODEL_CARD = os.path.join(DEFAULT_WEIGHTS, "model_card.json")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_card() -> dict:
    with open(MODEL_CARD, encoding="utf-8") as handle:
        return json.load(handle)


PROVENANCE_KEYS = ("created", "recipe", "training_data", "synthetic_config", "started_from")


def provenance(card: dict, criterion: str) -> dict:
    """How the shipped `criterion` generator was made (recipe, training data, start): its entry's own record
    when a later recipe run kept it as it was, else the card's."""
    entry = card["models"][criterion]
    return entry.get("provenance") or {key: card[key] for key in PROVENANCE_KEYS if key in card}


def default_generator_path(criterion: str) -> str:
    """The shipped generator for `criterion`, after checking its sha256 against the model card."""
    models = model_card()["models"]
    if criterion not in models:
        raise InputError(f"no shipped default model for {criterion}; shipped: {', '.join(sorted(models))}")
    entry = models[criterion]
    path = os.path.join(DEFAULT_WEIGHTS, entry["file"])
    if not os.path.exists(path):
        raise InputError(f"the shipped default weights {entry['file']} are missing; reinstall soupgan")
    if sha256_of(path) != entry["sha256"]:
        raise InputError(f"the shipped default weights {entry['file']} fail their sha256 check; reinstall soupgan")
    return path


def generator_path(model: str | None, criterion: str) -> str:
    """The `.keras` file `--model` names (None: the shipped default for `criterion`), checked for `criterion`."""
    if model is None:
        return default_generator_path(criterion)
    if os.path.isdir(model):
        run = RunDirectory(model)
        config = run.read_config()
        if config is None or not os.path.exists(run.best_generator):
            raise InputError(f"{model}: not a training run folder (no config.json and best_generator.keras); "
                             "an export folder goes to upsample --model or --server")
        if config.get("criterion") != criterion:
            raise InputError(f"{model}: trained for {config.get('criterion')}, not {criterion}")
        return run.best_generator
    if not model.endswith(".keras") or not os.path.isfile(model):
        raise InputError(f"{model}: not a training run folder or a generator .keras file")
    return model


def resolve_generator(model: str | None, criterion: str) -> SoupGenerator:
    """Load the generator named by `--model` (None: the shipped default for `criterion`)."""
    path = generator_path(model, criterion)
    try:
        return load_generator(path)
    except Exception as err:  # Keras reports a bad archive with many exception types
        raise InputError(f"{path}: not a soupgan generator ({type(err).__name__}: {str(err).splitlines()[0]})") from None
