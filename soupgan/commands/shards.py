"""`soupgan shards`: the Beam job that writes TFRecord patch-pair shards (its flags are beam_jobs.shards')."""
from __future__ import annotations

import argparse

from pipeline.errors import InputError
from soupgan.console import show_progress


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "shards", add_help=False, help="Beam job: volumes -> TFRecord patch-pair shards (soupgan shards --help)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from beam_jobs.shards import run as run_job

    show_progress()
    manifest = run_job(args.shards_args)
    if manifest["inputs_read"] == 0:
        raise InputError(f"no input volume could be read ({manifest['inputs_failed']} failed); reasons in the dead letters")
    counts = ", ".join(f"{split} {manifest['counts'][split]['total']}" for split in manifest["counts"])
    done = "verified as made" if "--verify" in args.shards_args else "read"
    print(f"{manifest['inputs_read']} volume(s) {done}, {manifest['inputs_failed']} failed; patch pairs: {counts}")
