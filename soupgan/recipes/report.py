"""`soupgan recipe report RUN`: what a run would install against the default it would replace, on every scan its
recipe evaluates (the validation scan and the held-out ones): each method's PSNR / SSIM per scale, the change
over the baseline row (the installed default, `soupgan evaluate --baseline shipped`) and the worst of those
changes, as Markdown (RUN/report.md) and a figure of the changes against the scale (RUN/report.png).
"""
from __future__ import annotations

import os

from model.reports.figures import plot_changes_over_baseline
from model.weights.model_card import METHODS
from pipeline.config import scale_label
from pipeline.errors import InputError
from soupgan.recipes.runner import RecipeRun

BASELINE, NEW = "baseline", "soupgan"


def evaluations(run: RecipeRun) -> list[tuple[str, str, dict]]:
    """(criterion, scan, metrics) of every finished evaluation of the run, in the recipe's order."""
    recipe = run.read_recipe()
    found = []
    for criterion in recipe.install:
        for scan in (recipe.validation_scan, *recipe.held_out_scans):
            metrics = run.metrics(criterion, None if scan == recipe.validation_scan else scan)
            if metrics:
                found.append((criterion, scan, metrics))
    return found


def changes(metrics: dict) -> dict[float, float]:
    """{scale: the new generator's PSNR minus the baseline's} where both were scored."""
    by_scale = {}
    for row in metrics["rows"]:
        by_scale.setdefault(row["scale"], {})[row["method"]] = row["psnr"]
    return {scale: methods[NEW] - methods[BASELINE] for scale, methods in by_scale.items()
            if NEW in methods and BASELINE in methods}


def markdown(found: list[tuple[str, str, dict]]) -> str:
    """One table per criterion: scan, scale, each method's PSNR / SSIM and the change over the baseline."""
    lines = ["# Recipe run against the installed default", ""]
    for criterion in dict.fromkeys(criterion for criterion, _, _ in found):
        mine = [(scan, metrics) for c, scan, metrics in found if c == criterion]
        methods = [m for m in METHODS if any(row["method"] == m for _, metrics in mine for row in metrics["rows"])]
        lines += [f"## {criterion}", "", "| scan | scale | " + " | ".join(methods) + " | change over baseline |",
                  "| --- | --- |" + " --- |" * (len(methods) + 1)]
        worst = None
        for scan, metrics in mine:
            crop = f" ({metrics['crop']}² centre)" if metrics.get("crop") else ""
            delta = changes(metrics)
            for scale in dict.fromkeys(row["scale"] for row in metrics["rows"]):
                rows = {row["method"]: row for row in metrics["rows"] if row["scale"] == scale}
                cells = [f"{rows[m]['psnr']:.2f} / {rows[m]['ssim']:.4f}" if m in rows else "" for m in methods]
                change = f"{delta[scale]:+.2f} dB" if scale in delta else ""
                lines.append(f"| {scan}{crop} | x{scale_label(scale)} | " + " | ".join(cells) + f" | {change} |")
                if scale in delta and (worst is None or delta[scale] < worst[0]):
                    worst = (delta[scale], scan, scale)
        lines.append("")
        if worst:
            lines += [f"Worst change over the baseline: {worst[0]:+.2f} dB ({worst[1]} x{scale_label(worst[2])}).", ""]
    return "\n".join(lines)


def write_report(folder: str) -> tuple[str, str]:
    """RUN/report.md and RUN/report.png from the run's evaluations; returns (markdown, png path)."""
    run = RecipeRun(folder)
    found = evaluations(run)
    if not found:
        raise InputError(f"{folder}: no evaluation has finished yet; run `soupgan recipe run` to its evaluate steps")
    text = markdown(found)
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    png = os.path.join(folder, "report.png")
    plot_changes_over_baseline({(criterion, scan): changes(metrics) for criterion, scan, metrics in found}, png,
                               f"recipe {run.read_recipe().name}: PSNR change over the installed default")
    return text, png
