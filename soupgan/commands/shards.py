"""`soupgan shards`: the Beam job that writes TFRecord patch-pair shards (its flags are beam_jobs.shards')."""
from __future__ import annotations

import argparse
import logging

from pipeline.errors import InputError
from soupgan.console import show_progress


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "shards", add_help=False, help="Beam job: volumes -> TFRecord patch-pair shards (soupgan shards --help)"
    )
    parser.set_defaults(run=run)


BIGQUERY_NOTICE = "apitools not found, and bigquery client libraries are not available"


def without_bigquery_notice(record: logging.LogRecord) -> bool:
    """Beam's import warns on the root logger that its BigQuery clients are missing; no soupgan job uses them, and
    the notice would come before a bad input's one-line error."""
    return not (isinstance(record.msg, str) and record.msg.startswith(BIGQUERY_NOTICE)
                and "apache_beam" in record.pathname)


def run(args: argparse.Namespace) -> None:
    logging.getLogger().addFilter(without_bigquery_notice)  # before Beam is imported
    from beam_jobs.shards import add_arguments, run as run_job

    show_progress()
    manifest = run_job(args.shards_args)
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    verified = parser.parse_known_args(args.shards_args)[0].verify  # as the job read it (abbreviated flags too)
    if manifest["inputs_read"] == 0:
        raise InputError(f"no input volume could be read ({manifest['inputs_failed']} failed); reasons in the dead letters")
    counts = ", ".join(f"{split} {manifest['counts'][split]['total']}" for split in manifest["counts"])
    done = "verified as made" if verified else "read"
    print(f"{manifest['inputs_read']} volume(s) {done}, {manifest['inputs_failed']} failed; patch pairs: {counts}")
