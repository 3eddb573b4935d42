"""PNG figures people look at: metrics against scale (paper Fig. 5); the planes of volumes are drawn by
`model.reports.preview`."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from pipeline.io.staging import staged

METRICS = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("rmse", "RMSE"))


def save_figure(figure, path: str, replace: bool = True) -> None:
    """Save as PNG through a staging name, so a reader never sees half a figure (`replace=False`: keep a file
    that appeared at `path` meanwhile)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with staged(path, replace) as written:
            figure.savefig(written, dpi=110, format="png")
    finally:
        plt.close(figure)


def plot_metrics_vs_scale(rows: list[dict], path: str, title: str = "", replace: bool = True) -> None:
    """RMSE, PSNR and SSIM against the scale, one line per method."""
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for method in dict.fromkeys(row["method"] for row in rows):
        mine = [row for row in rows if row["method"] == method]
        for ax, (key, label) in zip(axes, METRICS):
            ax.plot([row["scale"] for row in mine], [row[key] for row in mine], marker="o", label=method)
            ax.set_xlabel("scale s")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0].legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path, replace)


def display_range(image: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(image, [0.5, 99.5])
    return float(low), float(high if high > low else low + 1)


def plot_changes_over_baseline(changes: dict[tuple[str, str], dict[float, float]], path: str, title: str = "") -> None:
    """PSNR change (dB) over a baseline against the scale: one panel per criterion, one line per scan."""
    criteria = list(dict.fromkeys(criterion for criterion, _ in changes))
    figure, axes = plt.subplots(1, len(criteria), figsize=(5.5 * len(criteria), 3.6), squeeze=False)
    for ax, criterion in zip(axes[0], criteria):
        for (mine, scan), by_scale in changes.items():
            if mine == criterion and by_scale:
                scales = sorted(by_scale)
                ax.plot(scales, [by_scale[s] for s in scales], marker="o", label=scan)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_title(criterion)
        ax.set_xlabel("scale s")
        ax.set_ylabel("PSNR change (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
