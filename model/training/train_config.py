"""The settings of a training run (RUN/config.json) and their checks; light to import (no TensorFlow)."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import PATCH_SIZE, SCALES, THIN_TO_THICK, THIN_TO_THIN, scale_label
from pipeline.errors import InputError

STAGES = ("mse", "gan")
STRATEGIES = ("default", "mirrored", "multiworker")
LR_SCHEDULES = ("plateau", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PIXEL_LOSSES = ("mse", "log-mse")
JIT_SETTINGS = ("auto", "on", "off")
PERCEPTUAL_TERMS = ("laplacian", "vgg19")  # stage 2: the offline tri-planar Laplacian pyramid, or VGG19-54 features
# Settings that must not change when a run is restarted into the same folder.
RESUME_KEYS = ("stage", "init", "criterion", "batch_size", "generator", "filters", "blocks", "growth",
               "disc_filters", "perceptual", "perceptual_weight", "adversarial_weight", "mse_weight", "vgg_weights", "loss_margin",
               "patch_size", "patch_depth", "slice_dilations", "augment", "lr_schedule", "precision", "pixel_loss",
               "portable")

# Stage-2 run folders written before a key existed ran with these (VGG19 was the perceptual term before 0.5.0).
GAN_DEFAULTS_BEFORE_THE_KEY = {"perceptual": "vgg19"}


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as RUN/config.json."""

    data: str | None = None  # a shard set, or
    volumes: list[str] | None = None  # thin-slice scans to draw augmented pairs from on the fly
    out: str = ""
    stage: str = "mse"
    init: str | None = None  # a run folder (its best generator) or a .keras file to start from (gan: stage-1 weights)
    epochs: int = 50
    steps_per_epoch: int | None = None  # default: the train split's batches of the chosen criterion
    validation_steps: int | None = None  # default: the whole val split
    batch_size: int = 8  # global: split across replicas
    strategy: str | None = None  # default: "mirrored" when --replicas > 1, else "default"
    replicas: int | None = None
    criterion: str = THIN_TO_THIN
    generator: str = "residual"
    filters: int = 16
    blocks: int = 4
    growth: int = 8
    disc_filters: int = 16
    learning_rate: float | None = None  # default 3e-4 (mse), 1e-4 (gan)
    d_learning_rate: float = 1e-4
    lr_factor: float = 1 / 3
    lr_patience: int = 3
    perceptual: str = "laplacian"  # chosen by the ablation in BENCHMARKS.md ("The GAN stage's perceptual term")
    perceptual_weight: float = 1.0
    adversarial_weight: float = 0.01
    mse_weight: float = 0.001
    vgg_weights: str = "imagenet"
    perceptual_slices: int | None = None  # per plane and step; default all
    pixel_loss: str = "mse"  # stage 1: mse, or log-mse (every sample's gain in decibels)
    loss_margin: int = 0  # voxels at each patch face left out of the MSE (zero-padding artefacts)
    scales: list[float] | None = None  # of pairs drawn from --volumes, ratios p/q too (default 2..6; shards: their own)
    patch_size: int = PATCH_SIZE  # of pairs drawn from --volumes (a shard set has its own)
    patch_depth: int | None = None  # --volumes pairs' length along the slice axis (default patch_size)
    slice_dilations: list[int] | None = None  # slice-axis reach blocks (with --init: added to that generator)
    augment: bool = True  # intensity augmentation of pairs drawn from --volumes
    consistent_input: bool = False  # thin-to-thick inputs with slab means restored (--data: the shard set's say)
    flow_input: bool = False  # inputs made by flow-guided interpolation (pipeline.method.slice_flow; --data: ditto)
    lr_schedule: str = "plateau"
    precision: str = "float32"
    jit_compile: str = "auto"  # auto: XLA where Keras picks it (GPUs), on, off
    checkpoint_every: int | None = None  # optimizer steps between mid-epoch checkpoints (default: epoch ends)
    seed: int = 0
    portable: bool = False  # stage 1 from volumes with Keras fit on any backend (model.training.portable_training)
    data_workers: int = 0  # portable: processes drawing pairs (0: in the training process)

    def validate(self) -> None:
        if (self.data is None) == (not self.volumes):
            raise InputError("give either --data SHARDS or --volumes SCAN [SCAN ...]")
        if self.volumes and self.steps_per_epoch is None:
            raise InputError("--volumes draws pairs without end: give --steps-per-epoch")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"unknown --lr-schedule {self.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
        if self.pixel_loss not in PIXEL_LOSSES:
            raise InputError(f"unknown --pixel-loss {self.pixel_loss!r}; choose from {', '.join(PIXEL_LOSSES)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown --precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.jit_compile not in JIT_SETTINGS:
            raise InputError(f"--jit-compile must be one of {', '.join(JIT_SETTINGS)}, got {self.jit_compile!r}")
        if self.replicas and self.batch_size % self.replicas:  # before any device is set up
            raise InputError(f"--batch-size {self.batch_size} is not divisible by the {self.replicas} replicas")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise InputError("--checkpoint-every must be at least 1")
        if self.perceptual not in PERCEPTUAL_TERMS:
            raise InputError(f"unknown --perceptual {self.perceptual!r}; choose from {', '.join(PERCEPTUAL_TERMS)}")
        if self.stage not in STAGES:
            raise InputError(f"unknown stage {self.stage!r}; choose from {', '.join(STAGES)}")
        if self.stage == "gan" and not self.init:
            raise InputError("--stage gan needs --init RUN (a finished stage-1 run)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.patch_depth is not None and self.patch_depth < 1:
            raise InputError("--patch-depth must be at least 1")
        if self.patch_depth is not None and self.data:
            raise InputError("--patch-depth applies to pairs drawn from --volumes; a shard set has its own patch size")
        if self.scales is not None and self.data:
            raise InputError("--scales applies to pairs drawn from --volumes; a shard set has the scales it was made "
                             "with (`soupgan shards --scales`)")
        outside = [s for s in self.scales or () if not min(SCALES) <= s <= max(SCALES)]
        if outside:
            raise InputError(f"--scales {', '.join(scale_label(s) for s in outside)}: outside the generator's range "
                             f"[{min(SCALES)}, {max(SCALES)}]")
        if any(d < 1 for d in self.slice_dilations or ()):
            raise InputError(f"--slice-dilations must be >= 1, got {self.slice_dilations}")
        if self.consistent_input and self.criterion != THIN_TO_THICK:
            raise InputError("--consistent-input is for --criterion thin-to-thick")
        if self.loss_margin < 0:
            raise InputError("--loss-margin must be >= 0")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise InputError("--steps-per-epoch must be at least 1")
        if self.data_workers < 0:
            raise InputError("--data-workers must be >= 0")
        if self.portable and (self.stage != "mse" or self.strategy or self.replicas):
            raise InputError("--portable trains stage 1 on one device; stage 2 and tf.distribute need the "
                             "TensorFlow trainer")
        if self.data_workers and not (self.portable and self.volumes):
            raise InputError("--data-workers is for --portable --volumes (a shard set is read by one thread)")

    @property
    def strategy_name(self) -> str:
        if self.strategy:
            return self.strategy
        return "mirrored" if self.replicas and self.replicas > 1 else "default"

    @property
    def keras_jit_compile(self) -> bool | str:
        """The `jit_compile` argument of Keras' `compile`."""
        return {"auto": "auto", "on": True, "off": False}[self.jit_compile]

    @property
    def g_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else (3e-4 if self.stage == "mse" else 1e-4)


def check_restart(previous: dict | None, config: TrainConfig) -> None:
    """A restart must be the same run: refuse a folder whose config.json (`previous`) holds a different one."""
    if previous is None:
        return
    defaults = vars(TrainConfig())  # what a run folder older than a key had
    if previous.get("stage") == "gan":
        defaults.update(GAN_DEFAULTS_BEFORE_THE_KEY)
    changed = [key for key in RESUME_KEYS if previous.get(key, defaults[key]) != getattr(config, key)]
    if changed:
        raise InputError(f"{config.out} holds a different run ({', '.join(changed)} changed); use another --out")
