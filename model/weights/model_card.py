"""The shipped weights' model card as Markdown, rendered from `default_weights/model_card.json` so the card people
read is never a hand copy that drifts from the one every load checks (`python -m model.weights.model_card` rewrites it)."""
from __future__ import annotations

import argparse
import os

from model.weights.model_source import DEFAULT_WEIGHTS, model_card, provenance

CARD_MARKDOWN = os.path.join(DEFAULT_WEIGHTS, "MODEL_CARD.md")
# "reference": the authors' released model; "baseline": the default generator installed when it was evaluated
METHODS = ("tricubic", "flow-guided", "reference", "baseline", "soupgan")


def input_description(consistent: bool, flow: bool) -> str:
    """A generator's input, as the card names it."""
    interpolation = "flow-guided slice interpolation" if flow else "cubic spline"
    return interpolation + (" with slab means restored" if consistent else "")


def lineage(record: dict) -> list[dict]:
    """The chain of earlier generators a record started from, newest first."""
    chain = []
    while "started_from" in record:
        record = record["started_from"]
        chain.append(record)
    return chain


def quality_table(scores: dict) -> list[str]:
    """PSNR / SSIM per scale and method, as a Markdown table."""
    methods = [method for method in METHODS if any(method in row for row in scores.values())]
    lines = ["| scale | " + " | ".join(methods) + " |", "| --- |" + " --- |" * len(methods)]
    for scale, row in scores.items():
        cells = [f"{row[m]['psnr']:.2f} dB / {row[m]['ssim']:.4f}" if m in row else "" for m in methods]
        lines.append(f"| {scale} | " + " | ".join(cells) + " |")
    return lines


def quality_section(entry: dict) -> list[str]:
    """The headings and tables of an entry's scores on its validation scan (Colin27 for the older recipe) and on
    any held-out scans."""
    if "validation" not in entry:
        return ["Quality on Colin27 (never trained on), 128² in-plane centre crop, PSNR / SSIM:", "",
                *quality_table(entry["colin27_centre128"])]
    validation = entry["validation"]
    crop = f", {validation['crop']}² in-plane centre crop" if validation.get("crop") else ""
    baseline = validation.get("baseline")
    if baseline:
        which = "the default it replaced" if baseline.get("replaced") else "the default installed when it was scored"
        baseline = f"; baseline: {which}, sha256 {baseline['sha256'][:12]}…"
    lines = [f"Quality on {validation['scan']} (never trained on){crop}, PSNR / SSIM (reference: the authors' "
             f"released model{baseline or ''}):", "", *quality_table(validation["scores"])]
    for scan, scores in entry.get("held_out", {}).items():
        lines += ["", f"Quality on {scan} (held out, whole slices), PSNR / SSIM:", "", *quality_table(scores)]
    return lines


def render_model_card(card: dict) -> str:
    """The whole card: per criterion its file and sha256, input, training, recipe, data, quality and lineage."""
    lines = ["# soupgan default weights: model card", "",
             "Rendered from `model_card.json` by `python -m model.weights.model_card`; edit the JSON, not this file.", "",
             f"Architecture: {card['architecture']}. Validation: {card['validation']}.", ""]
    for criterion, entry in card["models"].items():
        made = provenance(card, criterion)
        training = entry["training"]
        lines += [f"## {criterion}" + (f" (version {entry['version']})" if "version" in entry else ""), "",
                  f"- File: `{entry['file']}`, sha256 `{entry['sha256']}`",
                  *([f"- Architecture: {entry['architecture']}"] if "architecture" in entry else []),
                  f"- Input: {training.get('input', 'cubic spline')}",
                  f"- Training: stage {training['stage']}, batch {training['batch_size']}, patch "
                  f"{training['patch_size']}, loss margin {training['loss_margin']}, {training['lr_schedule']} "
                  f"schedule, augmentation {'on' if training['augmentation'] else 'off'}, the {training['generator']}",
                  f"- Made on {made['created']} by `{made['recipe']}`",
                  f"- Training data: {', '.join(made['training_data'])}", "",
                  *quality_section(entry), "",
                  "Started from, newest first:", ""]
        lines += [f"{n}. `{step['generator']}` sha256 `{step['sha256'][:12]}…`"
                  + (f", made by `{step['recipe']}`" if "recipe" in step else "")
                  for n, step in enumerate(lineage(made), 1)]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=CARD_MARKDOWN)
    args = parser.parse_args()
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(render_model_card(model_card()))
    print(args.out)


if __name__ == "__main__":
    main()
