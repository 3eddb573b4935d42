"""`soupgan recipe run`: every step of a recipe with the product's own commands, each into its own folder of the
run, so that every stage's artefact is kept and a rerun resumes where the last one stopped:

    RUN/recipe.toml         the recipe as run (a folder holding another recipe is refused)
    RUN/scans.json          each scan's role, file sha256 and pin (package source, or synthetic code hash)
    RUN/shards/             `soupgan shards` of the train scans
    RUN/shards.json         where the finished set made elsewhere is, when the run trains on it (`--shards`,
                            written once `soupgan shards --verify` has passed)
    RUN/stages/NAME/        `soupgan train --data RUN/shards` run folders, one per stage
    RUN/export/CRITERION/   `soupgan export` of each generator to install
    RUN/evaluate/CRITERION/ `soupgan evaluate` on the validation scan (metrics.json, PNGs), the installed
                            default generator scored beside it (`--baseline shipped`)
    RUN/evaluate/CRITERION/held-out/SCAN/  the same on each held-out scan, whole slices
    RUN/steps.json          each finished step: its command and when it finished

Steps run as `python -m soupgan ...` subprocesses, as a user would run them. Nothing is written into the
package: `soupgan recipe install RUN` does that, explicitly.
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import subprocess
import sys
import tomllib

from model.training.train_config import TrainConfig
from model.weights.run_dir import write_json_atomic
from pipeline.errors import InputError
from soupgan.recipes.public_scans import CACHE, authors_model_path, scan_path
from soupgan.recipes.recipe import AUTHORS, SHIPPED, Recipe, as_flags, parse_recipe

SHARDS_DEFAULTS = {"consistent_input": True}


class RecipeRun:
    """The run folder of one recipe: its paths and the record of finished steps."""

    def __init__(self, folder: str):
        self.folder = folder
        self.recipe_file = os.path.join(folder, "recipe.toml")
        self.scans_file = os.path.join(folder, "scans.json")
        self.steps_file = os.path.join(folder, "steps.json")
        self.shards_pointer = os.path.join(folder, "shards.json")
        self.given_shards = None  # a set made elsewhere, to train on once `--verify` has passed (`use_shards`)

    @property
    def reuses_shards(self) -> bool:
        return self.given_shards is not None or os.path.exists(self.shards_pointer)

    @property
    def shards(self) -> str:
        """The run's shard set: the one given now, the checked one made elsewhere that it trains on, or its own."""
        if self.given_shards:
            return self.given_shards
        if os.path.exists(self.shards_pointer):
            with open(self.shards_pointer, encoding="utf-8") as handle:
                return json.load(handle)["path"]
        return os.path.join(self.folder, "shards")

    def use_shards(self, path: str) -> None:
        """Train on a finished shard set made elsewhere, once the shards step's `--verify` has passed (which
        changes nothing in it); refused when the run already has a set, its own or another checked one."""
        if "://" in path:
            raise InputError(f"--shards takes a local folder (another run's shards/), not {path}")
        path = os.path.realpath(path)
        if path == os.path.realpath(self.shards):
            return
        if "shards" in self.finished():
            raise InputError(f"{self.folder} already has its shard set ({self.shards}); "
                             f"start another run folder to train on {path}")
        if path == os.path.realpath(os.path.join(self.folder, "shards")):
            return  # its own set, made here
        self.given_shards = path

    def stage(self, name: str) -> str:
        return os.path.join(self.folder, "stages", name)

    def export(self, criterion: str) -> str:
        return os.path.join(self.folder, "export", criterion)

    def evaluation(self, criterion: str, held_out: str | None = None) -> str:
        folder = os.path.join(self.folder, "evaluate", criterion)
        return os.path.join(folder, "held-out", held_out.replace(":", "-")) if held_out else folder

    def read_recipe(self) -> Recipe:
        """The recipe the run was started with."""
        if not os.path.exists(self.recipe_file):
            raise InputError(f"{self.folder} is not a recipe run (no recipe.toml)")
        with open(self.recipe_file, encoding="utf-8") as handle:
            return parse_recipe(handle.read(), "recipe.toml")

    def metrics(self, criterion: str, held_out: str | None = None) -> dict | None:
        """An evaluation's metrics.json, or None before it has run."""
        path = os.path.join(self.evaluation(criterion, held_out), "metrics.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def finished(self) -> dict:
        if not os.path.exists(self.steps_file):
            return {}
        with open(self.steps_file, encoding="utf-8") as handle:
            return json.load(handle)

    def record(self, step: str, command: list[str]) -> None:
        if step == "shards" and self.given_shards:  # checked: from now on the run trains on it, flag or not
            write_json_atomic(self.shards_pointer, {"path": self.given_shards})
        steps = self.finished()
        steps[step] = {"command": command, "finished": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        write_json_atomic(self.steps_file, steps)

    def start(self, recipe: Recipe) -> None:
        """Make the folder with the recipe in it, or check that it holds this same recipe: the same settings (its
        text, kept as first run, may differ in comments and layout)."""
        if os.path.exists(self.recipe_file):
            if tomllib.loads(recipe.text) != tomllib.loads(self.read_recipe().text):
                raise InputError(f"{self.folder} holds the run of another recipe; choose another run folder")
            return
        os.makedirs(self.folder, exist_ok=True)
        with open(self.recipe_file, "w", encoding="utf-8") as handle:
            handle.write(recipe.text)


def recipe_steps(recipe: Recipe, run: RecipeRun, scans: dict, models: bool = True) -> list[tuple[str, list[str]]]:
    """(step name, `soupgan` arguments) of every step after the scans, in order. `models=False` leaves the shipped
    generator and the authors' model out of the arguments (nothing checked or fetched: for the steps' names)."""
    from model.weights.model_source import default_generator_path

    def shipped(criterion: str) -> str:
        return default_generator_path(criterion) if models else SHIPPED

    train_paths = [scans[name]["path"] for name in recipe.train_scans]
    steps = [("shards", ["shards", *train_paths, "--output", run.shards,
                         "--verify" if run.reuses_shards else "--resume", *as_flags(recipe.shards, SHARDS_DEFAULTS)])]
    defaults = vars(TrainConfig())
    for stage in recipe.stages:
        init = []
        if stage.init == SHIPPED:
            init = ["--init", shipped(stage.criterion)]
        elif stage.init:
            init = ["--init", run.stage(stage.init)]
        steps.append((f"stage {stage.name}", ["train", "--data", run.shards, "--out", run.stage(stage.name),
                                              "--criterion", stage.criterion, *init, *as_flags(stage.train, defaults)]))
    evaluate = recipe.evaluate
    for criterion, name in recipe.install.items():
        steps.append((f"export {criterion}", ["export", "--model", run.stage(name), "--criterion", criterion,
                                              "--out", run.export(criterion),
                                              "--scales", ",".join(f"{s:g}" for s in recipe.export_scales)]))
        reference = (["--reference", authors_model_path() if models else AUTHORS]
                     if evaluate.get("reference") == AUTHORS and criterion == "thin-to-thin" else [])
        common = ["--model", run.stage(name), "--criterion", criterion, "--baseline", SHIPPED, "--force",
                  *(["--scales", ",".join(map(str, evaluate["scales"]))] if "scales" in evaluate else []), *reference]
        steps.append((f"evaluate {criterion}", [
            "evaluate", scans[recipe.validation_scan]["path"], "--out", run.evaluation(criterion), *common,
            *(["--crop", str(evaluate["crop"])] if "crop" in evaluate else [])]))
        steps += [(f"evaluate {criterion} on {scan}", ["evaluate", scans[scan]["path"],
                                                       "--out", run.evaluation(criterion, scan), *common])
                  for scan in recipe.held_out_scans]
    return steps


def step_status(recipe: Recipe, run: RecipeRun, step: str, finished: dict) -> str:
    """One step's state: when it finished, how far its training stage has come, or that it has not started."""
    from model.weights.run_dir import RunDirectory

    if step in finished:
        reused = f"; trains on {run.shards}, made elsewhere" if step == "shards" and run.reuses_shards else ""
        return f"done {finished[step]['finished'][:19].replace('T', ' ')} UTC{reused}"
    if step.startswith("stage "):
        stage = recipe.stage(step[len("stage "):])
        state = RunDirectory(run.stage(stage.name)).read_state()
        if state:
            into = f", {state['step']} steps into the next" if state.get("step") else ""
            return (f"started: epoch {state['epoch']} of {stage.train.get('epochs', TrainConfig.epochs)} done{into}; "
                    f"best {state['monitor']} {state['best']:.6g}")
    elif step == "shards" and os.path.isdir(run.shards) and not run.reuses_shards:  # its own, being made
        done = glob.glob(os.path.join(run.shards, "parts", "*.json"))  # one per volume (beam_jobs.resume)
        return f"started: {len(done)} of {len(recipe.train_scans)} volumes done"
    return "not started"


def step_names(recipe: Recipe, run: RecipeRun) -> list[str]:
    """Every step's name, in order, with no scan or model fetched or checked."""
    scans = {name: {"path": ""} for name in (*recipe.train_scans, recipe.validation_scan, *recipe.held_out_scans)}
    return [step for step, _ in recipe_steps(recipe, run, scans, models=False)]


def recipe_status(folder: str) -> list[tuple[str, str]]:
    """(step, state) of every step of the recipe run in `folder`, in order."""
    run = RecipeRun(folder)
    recipe = run.read_recipe()
    finished = run.finished()
    return [(step, step_status(recipe, run, step, finished)) for step in step_names(recipe, run)]


def resolve_scans(recipe: Recipe, cache: str) -> dict:
    """Every scan fetched (or made) and checked against its pin: {name: {role, path, sha256, pin...}}."""
    from pipeline.data.synthetic import SyntheticConfig

    synthetic = SyntheticConfig(**{key: tuple(v) if isinstance(v, list) else v
                                   for key, v in recipe.synthetic.items()})
    scans = {}
    for role, names in (("train", recipe.train_scans), ("validation", (recipe.validation_scan,)),
                        ("held-out", recipe.held_out_scans)):
        for name in names:
            path, pin = scan_path(name, cache, synthetic)
            scans[name] = {"role": role, "path": path, **pin}
    return scans


def run_recipe(recipe: Recipe, folder: str, cache: str = CACHE, shards: str | None = None) -> dict:
    """Run (or resume) every step, training on the finished set `shards` if given rather than making the run's
    own; returns {step: "ran" | "done before"}."""
    run = RecipeRun(folder)
    run.start(recipe)
    if shards:
        run.use_shards(shards)
    scans = resolve_scans(recipe, cache)
    write_json_atomic(run.scans_file, {name: {k: v for k, v in scan.items() if k != "path"}
                                       for name, scan in scans.items()})
    finished, report = run.finished(), {}
    for step, arguments in recipe_steps(recipe, run, scans):
        if step in finished:
            print(f"recipe {recipe.name}: {step}: done before", flush=True)
            report[step] = "done before"
            continue
        print(f"recipe {recipe.name}: {step}: $ soupgan {' '.join(arguments)}", flush=True)
        result = subprocess.run([sys.executable, "-m", "soupgan", *arguments])
        if result.returncode == 2 and step == "shards" and run.given_shards:
            raise InputError(f"recipe {recipe.name}: --shards {run.given_shards} is not the set this recipe makes "
                             f"(above); give another, or leave out --shards to make the run's own")
        if result.returncode:
            raise InputError(f"recipe {recipe.name}: step {step} failed (exit {result.returncode}); "
                             f"rerun the same command to resume from it")
        run.record(step, arguments)
        report[step] = "ran"
    return report
