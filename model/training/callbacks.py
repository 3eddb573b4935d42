"""Training callbacks that make a run resumable and visible: epoch checkpoints + best generator, curves PNG."""
from __future__ import annotations

import csv
import logging
import math
import os
import shutil

import keras

from model.networks.generator import float32_copy
from model.weights.run_dir import RunDirectory, write_json_atomic

LOG = logging.getLogger("soupgan")


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: save the generator (and copy it as the best one when the monitored loss improved),
    then the trainer's weights and optimizer slots, then (atomically) the state naming them; older
    checkpoints go last. With `every`, also a checkpoint each `every` steps inside an epoch, so a kill loses
    at most that many steps (state "step": steps of the unfinished epoch already done).

    Only the chief writes; in a multi-worker run every worker still restores from the chief's files.
    `step_offset` is the steps of the current epoch done before this `fit` (a mid-epoch resume).
    """

    def __init__(self, run: RunDirectory, monitor: str, best: float = math.inf, write: bool = True,
                 every: int | None = None, step_offset: int = 0):
        super().__init__()
        self.run, self.monitor, self.best, self.write = run, monitor, best, write
        self.every, self.step_offset, self._epoch = every, step_offset, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        if not self.write:
            return
        value = float((logs or {}).get(self.monitor, math.nan))
        generator = getattr(self.model, "generator", self.model)  # a SoupGAN trainer, or the generator itself
        self._replace(self.run.last_generator, lambda path: float32_copy(generator).save(path))
        if value < self.best:
            self.best = value
            self._replace(self.run.best_generator, lambda path: shutil.copyfile(self.run.last_generator, path))
            LOG.info("epoch %d: %s improved to %.6g, saved %s", epoch + 1, self.monitor, value,
                     os.path.basename(self.run.best_generator))
        self._save(self.run.checkpoint(epoch + 1), {"epoch": epoch + 1})

    def on_train_batch_end(self, batch, logs=None):
        step = self.step_offset + batch + 1
        if self.write and self.every and step % self.every == 0:
            self._save(self.run.checkpoint(self._epoch, step), {"epoch": self._epoch, "step": step})

    def _save(self, path: str, position: dict) -> None:
        """Trainer weights and optimizer slots, then the state naming them; older checkpoints removed last."""
        self.model.save_weights(path)
        write_json_atomic(self.run.state, {**position, "checkpoint": os.path.basename(path), "best": self.best,
                                           "monitor": self.monitor})
        for name in os.listdir(self.run.checkpoints):
            if name.endswith(".weights.h5") and name != os.path.basename(path):
                os.remove(os.path.join(self.run.checkpoints, name))

    @staticmethod
    def _replace(path: str, write) -> None:
        """Write `path` through a temporary file and a rename, so a kill never leaves half a model."""
        temporary = path.replace(".keras", ".tmp.keras")
        write(temporary)
        os.replace(temporary, path)


def _number(cell: str | None) -> float:
    """A history cell; CSVLogger writes "NA" for a metric an epoch did not have."""
    return math.nan if cell in (None, "", "NA") else float(cell)


def read_history(path: str) -> dict[str, list[float]]:
    """history.csv as columns, one row per epoch (a row written twice around a restart counts once)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    epochs = sorted(rows)
    columns = {"epoch": [epoch + 1 for epoch in epochs]}
    for key in (rows[epochs[0]] if epochs else {}):
        if key != "epoch":
            columns[key] = [_number(rows[epoch].get(key)) for epoch in epochs]
    return columns


def plot_curves(history_path: str, png_path: str, title: str) -> None:
    """One panel per metric (training and, where there is one, validation) saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_history(history_path)
    names = [key for key in history if key not in ("epoch", "learning_rate") and not key.startswith("val_")]
    if not names:
        return
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        axis.plot(history["epoch"], history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(history["epoch"], history[f"val_{name}"], marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)


class TrainingCurves(keras.callbacks.Callback):
    """Redraw RUN/curves.png from history.csv after every epoch (so it covers restarts too)."""

    def __init__(self, run: RunDirectory, title: str):
        super().__init__()
        self.run, self.title = run, title

    def on_epoch_end(self, epoch, logs=None):
        plot_curves(self.run.history, self.run.curves, self.title)
