"""`soupgan recipe install RUN`: the explicit step that ships a finished recipe run's generators as the package's
default weights, each as a new version with its card entry: file sha256, version, the recipe (its text and
sha256), the scans' hashes, the library versions, and its scores against tricubic (and the authors' model) on
the validation scan and any held-out scans. The other criterion's generator, when the recipe does not install
one, stays as it was.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import shutil

from model.networks.generator import load_generator
from model.weights.model_card import input_description, render_model_card
from model.weights.model_source import DEFAULT_WEIGHTS, provenance, sha256_of
from model.weights.run_dir import RunDirectory, write_json_atomic
from pipeline.errors import InputError
from soupgan.recipes.recipe import SHIPPED
from soupgan.recipes.runner import RecipeRun, step_names

LIBRARIES = ("soupgan", "tensorflow", "keras", "numpy", "scipy", "scikit-image", "apache-beam", "nibabel")


def library_versions() -> dict:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def scores_by_scale(metrics: dict) -> dict:
    """evaluate's metrics.json rows → {"x4": {method: {psnr, ssim, ...detail}}}."""
    table = {}
    for row in metrics["rows"]:
        table.setdefault(f"x{row['scale']}", {})[row["method"]] = {
            key: round(value, 4) if isinstance(value, float) else value
            for key, value in row.items() if key not in ("scale", "method")}
    return table


def stage_chain(recipe, name: str) -> list[str]:
    """The stages a stage was trained through, first to last."""
    chain = [name]
    while recipe.stage(chain[0]).init not in (None, SHIPPED):
        chain.insert(0, recipe.stage(chain[0]).init)
    return chain


def install_run(folder: str, weights: str = DEFAULT_WEIGHTS) -> dict:
    """Copy the run's generators into `weights` as new versions and rewrite its card; returns the card."""
    run = RecipeRun(folder)
    recipe = run.read_recipe()
    with open(run.scans_file, encoding="utf-8") as handle:
        scans = json.load(handle)
    finished = run.finished()
    missing = [step for step in step_names(recipe, run) if step not in finished]
    if missing:
        raise InputError(f"{folder}: the recipe has not finished ({', '.join(missing)} left); "
                         f"run `soupgan recipe run` to the end first")
    card_path = os.path.join(weights, "model_card.json")
    with open(card_path, encoding="utf-8") as handle:
        card = json.load(handle)
    with open(os.path.join(run.shards, "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    today = datetime.date.today().isoformat()
    for criterion, name in recipe.install.items():
        source = RunDirectory(run.stage(name)).best_generator
        generator = load_generator(source)
        previous = card["models"].get(criterion, {})
        chain = stage_chain(recipe, name)
        config = RunDirectory(run.stage(name)).read_config()
        metrics = run.metrics(criterion)
        made = {"created": today, "recipe": f"soupgan recipe run {recipe.name} (recipe sha256 {recipe.sha256})",
                "training_data": [f"{scan} (sha256 {pin['sha256'][:12]}…)" for scan, pin in scans.items()
                                  if pin["role"] == "train"]}
        if recipe.stage(chain[0]).init == SHIPPED and previous:
            made["started_from"] = {"generator": previous["file"], "sha256": previous["sha256"],
                                    **{k: v for k, v in provenance(card, criterion).items() if k != "created"}}
        target = os.path.join(weights, f"{criterion}.keras")
        shutil.copyfile(source, target)
        card["models"][criterion] = {
            "file": f"{criterion}.keras",
            "version": previous.get("version", 0) + 1,
            "architecture": f"{generator.variant}, {generator.filters} filters, {generator.blocks} blocks",
            "training": {"stage": config["stage"], "batch_size": config["batch_size"],
                         "patch_size": manifest["patch_size"], "loss_margin": config["loss_margin"],
                         "lr_schedule": config["lr_schedule"], "augmentation": manifest["variants"] > 1,
                         "generator": "best on the validation split", "input": input_description(generator.consistent_input, generator.flow_input),
                         "stages": chain, "shards": {key: manifest[key] for key in
                                                     ("schema_version", "input", "variants", "scales", "criteria")}},
            "validation": {"scan": recipe.validation_scan, "crop": metrics.get("crop"),
                           **({"baseline": {**metrics["baseline"],
                                            "replaced": metrics["baseline"]["sha256"] == previous.get("sha256")}}
                              if "baseline" in metrics else {}),
                           "scores": scores_by_scale(metrics)},
            **({"held_out": {scan: scores_by_scale(run.metrics(criterion, scan)) for scan in recipe.held_out_scans}}
               if recipe.held_out_scans else {}),
            "provenance": made,
            "recipe_text": recipe.text,
            "scans": scans,
            "libraries": library_versions(),
            "sha256": sha256_of(target),
        }
    write_json_atomic(card_path, card)
    with open(os.path.join(weights, "MODEL_CARD.md"), "w", encoding="utf-8") as handle:
        handle.write(render_model_card(card))
    return card
