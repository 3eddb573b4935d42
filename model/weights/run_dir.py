"""A training run's folder: its config, TensorBoard logs, history, checkpoints and the best generator.

    RUN/config.json                 the settings it ran with (a restart must match them)
    RUN/logs/                       TensorBoard
    RUN/history.csv                 one row per epoch (appended across restarts)
    RUN/curves.png                  training curves, redrawn every epoch
    RUN/checkpoints/state.json      {"epoch", ["step",] "checkpoint", "best", "monitor"} of the last checkpoint
    RUN/checkpoints/epoch-NNNN[-step-SSSSSSS].weights.h5   trainer weights and optimizer slots there
    RUN/best_generator.keras        the generator with the best monitored loss so far
    RUN/last_generator.keras        the generator after the last finished epoch
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass


def write_json_atomic(path: str, payload: dict) -> None:
    """Write JSON through a temporary file and a rename, so a kill never leaves half a file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(temporary, path)


@dataclass(frozen=True)
class RunDirectory:
    """Paths inside one run folder."""

    root: str

    @property
    def config(self) -> str:
        return os.path.join(self.root, "config.json")

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def history(self) -> str:
        return os.path.join(self.root, "history.csv")

    @property
    def curves(self) -> str:
        return os.path.join(self.root, "curves.png")

    @property
    def checkpoints(self) -> str:
        return os.path.join(self.root, "checkpoints")

    @property
    def state(self) -> str:
        return os.path.join(self.checkpoints, "state.json")

    @property
    def best_generator(self) -> str:
        return os.path.join(self.root, "best_generator.keras")

    @property
    def last_generator(self) -> str:
        return os.path.join(self.root, "last_generator.keras")

    def checkpoint(self, epoch: int, step: int | None = None) -> str:
        """After `epoch` epochs (and `step` more steps of the next one, for a mid-epoch checkpoint)."""
        suffix = f"-step-{step:07d}" if step else ""
        return os.path.join(self.checkpoints, f"epoch-{epoch:04d}{suffix}.weights.h5")

    def create(self) -> None:
        os.makedirs(self.checkpoints, exist_ok=True)

    def read_state(self) -> dict | None:
        """The last checkpoint's state, or None for a fresh run."""
        if not os.path.exists(self.state):
            return None
        with open(self.state, encoding="utf-8") as handle:
            return json.load(handle)

    def read_config(self) -> dict | None:
        if not os.path.exists(self.config):
            return None
        with open(self.config, encoding="utf-8") as handle:
            return json.load(handle)
