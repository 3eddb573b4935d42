"""A training recipe: a declarative TOML file naming the scans, the shards, the training stages, the export and
the evaluation that make a set of generators (`soupgan recipe run`), checked whole before anything runs.

    name = "tiny"
    [scans]        train = ["mni152", "synthetic:0"]; validation = "colin27"   (public names or synthetic:SEED)
    [synthetic]    SyntheticConfig fields (shape, classes, sheets, ...)
    [shards]       `soupgan shards` flags (scales, criteria, patch_size, input, variants, slice_axis, split, ...)
    [[stages]]     name, criterion, init (an earlier stage, or "shipped": the installed default), and `soupgan
                   train` flags (stage, epochs, steps_per_epoch, filters, perceptual, replicas, ...)
    [export]       scales; one SavedModel set per installed criterion
    [evaluate]     scales, crop, reference ("authors": their released model beside thin-to-thin), held_out
                   (more scans, never trained on, scored whole: the held-out checks a default must pass)
    [install]      criterion = stage: the generators `soupgan recipe install` ships

Packaged recipes live beside this module (`soupgan recipe list`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib

from model.training.train_config import TrainConfig
from pipeline.config import CRITERIA
from pipeline.errors import InputError
from soupgan.recipes.public_scans import check_scan_name

PACKAGED = os.path.dirname(os.path.abspath(__file__))
SECTIONS = {"name", "description", "scans", "synthetic", "shards", "stages", "export", "evaluate", "install"}
SHARDS_FLAGS = {"scales", "criteria", "patch_size", "stride", "split", "seed", "sigma", "slice_axis", "input",
                "consistent_input", "variants", "flow_threads"}
TRAIN_FLAGS = {field.name for field in dataclasses.fields(TrainConfig)} - {"data", "volumes", "out", "init",
                                                                             "criterion", "portable", "data_workers"}
SHIPPED = "shipped"  # a stage's init: the installed default generator of its criterion
AUTHORS = "authors"


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    criterion: str
    init: str | None
    train: dict


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    text: str  # the TOML, as written: kept in the run folder and the model card
    train_scans: tuple[str, ...]
    validation_scan: str
    synthetic: dict
    shards: dict
    stages: tuple[Stage, ...]
    export_scales: tuple[float, ...]
    evaluate: dict
    install: dict  # criterion -> stage name

    @property
    def held_out_scans(self) -> tuple[str, ...]:
        return tuple(self.evaluate.get("held_out", ()))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def recipe_path(name_or_path: str) -> str:
    """A packaged recipe's file by name ("tiny", "default"), or the path given."""
    packaged = os.path.join(PACKAGED, f"{name_or_path}.toml")
    if os.path.isfile(packaged):
        return packaged
    if os.path.isfile(name_or_path):
        return name_or_path
    raise InputError(f"no recipe {name_or_path!r}: give a .toml file or one of {', '.join(packaged_recipes())}")


def packaged_recipes() -> list[str]:
    return sorted(name[:-5] for name in os.listdir(PACKAGED) if name.endswith(".toml"))


def load_recipe(name_or_path: str) -> Recipe:
    path = recipe_path(name_or_path)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return parse_recipe(text, os.path.basename(path))


def _unknown(keys, allowed, where: str) -> None:
    extra = sorted(set(keys) - set(allowed))
    if extra:
        raise InputError(f"recipe {where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def parse_recipe(text: str, label: str = "recipe") -> Recipe:
    """Parse and check a recipe; every problem is a one-line `InputError` before anything runs."""
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{label}: not valid TOML ({err})") from None
    _unknown(spec, SECTIONS, label)
    for section in ("name", "scans", "shards", "stages", "install"):
        if section not in spec:
            raise InputError(f"{label}: no [{section}]" if section != "name" else f"{label}: no name")
    scans = spec["scans"]
    _unknown(scans, {"train", "validation"}, f"{label} [scans]")
    train = tuple(check_scan_name(name) for name in scans.get("train", ()))
    validation = check_scan_name(scans.get("validation", ""))
    if not train:
        raise InputError(f"{label} [scans]: no train scans")
    if validation in train:
        raise InputError(f"{label} [scans]: {validation} is the validation scan; it must not be trained on")
    _unknown(spec["shards"], SHARDS_FLAGS, f"{label} [shards]")
    stages = []
    for number, raw in enumerate(spec["stages"], 1):
        stage = dict(raw)
        name, criterion, init = stage.pop("name", f"stage{number}"), stage.pop("criterion", None), stage.pop("init", None)
        if criterion not in CRITERIA:
            raise InputError(f"{label} stage {name}: criterion must be one of {', '.join(CRITERIA)}")
        if init not in (None, SHIPPED) and init not in {s.name for s in stages}:
            raise InputError(f"{label} stage {name}: init {init!r} is neither an earlier stage nor {SHIPPED!r}")
        _unknown(stage, TRAIN_FLAGS, f"{label} stage {name}")
        stages.append(Stage(name, criterion, init, stage))
        check_stage(stages[-1], label)
    if len({stage.name for stage in stages}) != len(stages):
        raise InputError(f"{label}: stage names must be unique")
    install = spec["install"]
    for criterion, name in install.items():
        if name not in {stage.name for stage in stages} or next(s for s in stages if s.name == name).criterion != criterion:
            raise InputError(f"{label} [install]: {criterion} = {name!r} is not a {criterion} stage")
    export = spec.get("export", {})
    _unknown(export, {"scales"}, f"{label} [export]")
    evaluate = spec.get("evaluate", {})
    _unknown(evaluate, {"scales", "crop", "reference", "held_out"}, f"{label} [evaluate]")
    if evaluate.get("reference") not in (None, AUTHORS):
        raise InputError(f"{label} [evaluate]: reference must be {AUTHORS!r}")
    for name in evaluate.get("held_out", ()):
        if check_scan_name(name) in train or name == validation:
            raise InputError(f"{label} [evaluate]: held-out scan {name} is also a train or validation scan")
    return Recipe(name=str(spec["name"]), text=text, train_scans=train, validation_scan=validation,
                  synthetic=spec.get("synthetic", {}), shards=spec["shards"], stages=tuple(stages),
                  export_scales=tuple(export.get("scales", (2, 3, 4, 5, 6))), evaluate=evaluate, install=install)


def as_flags(settings: dict, defaults: dict) -> list[str]:
    """{"steps_per_epoch": 4, "criteria": ["a", "b"], "augment": false} → ["--steps-per-epoch", "4",
    "--criteria", "a,b", "--no-augment"]: a true boolean is the bare flag, a false one `--no-` where it is on by
    default (else nothing)."""
    flags = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else ([f"--no-{key.replace('_', '-')}"] if defaults.get(key) else [])
        elif isinstance(value, list):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, str(value)]
    return flags


def check_stage(stage: Stage, label: str) -> None:
    """The stage's settings as `soupgan train` will check them (a one-line error now, not after the shards)."""
    try:
        TrainConfig(**stage.train, data="shards", out="run", criterion=stage.criterion,
                    init="init" if stage.init else None).validate()
    except TypeError as err:
        raise InputError(f"{label} stage {stage.name}: {err}") from None
    except InputError as err:
        raise InputError(f"{label} stage {stage.name}: {err}") from None
