"""`soupgan export`: one TF Serving SavedModel per criterion and scale, plus models.config, warm-up requests
and a model card (serving/export.py)."""
from __future__ import annotations

import argparse
import json
import os
import time

from pipeline.config import THIN_TO_THIN
from pipeline.errors import InputError
from soupgan.commands.upsample import UPSAMPLE_CRITERIA


def add_parser(commands) -> None:
    parser = commands.add_parser("export", help="write TF Serving SavedModels, one per scale")
    parser.add_argument("--model", help="training run folder or generator .keras (default: the shipped weights)")
    parser.add_argument("--out", required=True, metavar="BASE",
                        help="model base folder (BASE/soupgan_<criterion>_x<s>/<version>/)")
    parser.add_argument("--scales", default="2,3,4,5,6", help="scales to export, fractional allowed (e.g. 2,2.5,4)")
    parser.add_argument("--criterion", choices=UPSAMPLE_CRITERIA, default=THIN_TO_THIN)
    parser.add_argument("--version", type=int, help="version number (default: one more than the highest there)")
    parser.add_argument("--serving-base", metavar="PATH",
                        help="where the server will see BASE (e.g. /models in a container) for models.config")
    parser.add_argument("--max-voxels", type=int, help="refuse requests whose output has more voxels than this")
    parser.set_defaults(run=run)


def parse_float_scales(text: str) -> list[float]:
    try:
        scales = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        scales = []
    if not scales:
        raise InputError(f"--scales {text}: expected numbers like 2,2.5,4")
    return scales


def source_card(model: str | None, criterion: str, path: str) -> dict:
    """What the model card says of where the generator comes from: the shipped card's entry or the run's config."""
    from model.weights.model_source import model_card, provenance, sha256_of
    from model.weights.run_dir import RunDirectory

    card = {"generator_file": os.path.basename(path), "generator_sha256": sha256_of(path)}
    if model is None:
        shipped = model_card()
        card.update({"source": "soupgan default weights",
                     "training_data": provenance(shipped, criterion).get("training_data"),
                     "measured": shipped["models"][criterion]})
    elif os.path.isdir(model):
        card.update({"source": "training run", "training": RunDirectory(model).read_config()})
    return card


def run(args: argparse.Namespace) -> None:
    from model.networks.generator import load_generator
    from model.weights.model_source import generator_path
    from model.inference.super_resolve import check_scale
    from pipeline.io.safe_output import check_writable
    from serving.export import DEFAULT_MAX_VOXELS, export_scale, model_name, write_models_config

    scales = parse_float_scales(args.scales)
    if args.version is not None and args.version < 1:
        raise InputError("--version must be >= 1")
    if args.max_voxels is not None and args.max_voxels < 1:
        raise InputError(f"--max-voxels {args.max_voxels}: must be >= 1")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out {args.out}: exists and is not a folder")
    check_writable(os.path.join(args.out, "models.config"), make_parents=True)
    path = generator_path(args.model, args.criterion)
    generator = load_generator(path)
    for scale in scales:  # every scale checked before anything is written
        check_scale(generator, scale)
        existing = os.path.join(args.out, model_name(scale, args.criterion), str(args.version))
        if args.version is not None and os.path.exists(existing):
            raise InputError(f"{existing} exists: versions are immutable, choose another --version")
    card = source_card(args.model, args.criterion, path)
    os.makedirs(args.out, exist_ok=True)
    exported = []
    for scale in scales:
        start = time.perf_counter()
        model = export_scale(generator, args.out, scale, args.criterion, args.version,
                             args.max_voxels or DEFAULT_MAX_VOXELS, card)
        exported.append({"name": model.name, "version": model.version, "seconds": round(time.perf_counter() - start, 2)})
    write_models_config(args.out, [model["name"] for model in exported], args.serving_base)
    print(json.dumps({"exported": exported, "models_config": os.path.join(args.out, "models.config")}))
