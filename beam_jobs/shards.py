"""`soupgan shards`: MRI/CT volumes -> GZIP TFRecord shards of patch pairs per split, a manifest and dead letters.

    expand inputs (driver) -> per volume: read, pair, encode, stream into <split>/<split>-NNNNN.tfrecord.gz
                              (its summary kept as parts/NNNNN.json, for --resume)
                           -> summaries and dead letters, gathered -> manifest.json, dead_letters.jsonl
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_jobs.resume import job_key, part_files, resume_plan, shard_files, unfinished_files, verify_finished_set
from beam_jobs.sources import expand_inputs
from beam_jobs.transforms import DEAD_LETTERS_FILE, VolumeToShard, WriteManifest
from pipeline.config import PATCH_SIZE, code_version, parse_criteria, parse_scales, scales_argument
from pipeline.errors import InputError
from pipeline.data.pairs import ALL_AXES, PairConfig
from pipeline.data.records import FLOW, INPUT_KINDS, MANIFEST_FILE, SCHEMA_VERSION
from pipeline.method.slice_flow import FLOW_OPTIONS
from pipeline.data.splits import parse_split

DEFAULT_RUNNER = "DirectRunner"  # named, so Beam never tries to download the Prism runner
BEAM_FLAGS_HELP = """Any other flag goes to Beam. Runners:
  default           --runner DirectRunner [--direct_num_workers N --direct_running_mode multi_processing]
  Dask              --runner apache_beam.runners.dask.dask_runner.DaskRunner --dask_client_address HOST:PORT
  Dataflow          --runner DataflowRunner --project P --region R --temp_location gs://B/tmp --setup_file ./setup.py
  Flink / Spark     --runner FlinkRunner --flink_master HOST:PORT --setup_file ./setup.py  (SparkRunner alike)
S3: --s3_endpoint_url URL --s3_access_key_id K --s3_secret_access_key S --s3_region_name R (or AWS_* variables)."""


def slice_axis_flag(text: str) -> int | str:
    return text if text == ALL_AXES else int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="NIfTI files, folders (searched; a folder of other files is one DICOM series), globs; "
                             "local, gs://, s3://")
    parser.add_argument("--output", required=True, help="output folder (local, gs://, s3://)")
    parser.add_argument("--scales", type=scales_argument, default=parse_scales("2,3,4,5,6"),
                        help="default 2,3,4,5,6; fractions p/q with q <= 8 too (2.5: thick slices 5 thin slices "
                             "apart against thin slices 2 apart)")
    parser.add_argument("--criteria", type=parse_criteria, default=parse_criteria("thin-to-thin,thin-to-thick"),
                        help="any of thin-to-thin, thin-to-thick, gaussian (default thin-to-thin,thin-to-thick)")
    parser.add_argument("--patch-size", type=int, default=PATCH_SIZE,
                        help=f"pair size in voxels (default {PATCH_SIZE})")
    parser.add_argument("--stride", type=int, help="patch grid stride (default: the patch size, no overlap)")
    parser.add_argument("--split", type=parse_split, default=(8, 1, 1), help="train,val,test weights (default 8,1,1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the by-volume split")
    parser.add_argument("--sigma", type=float, help="gaussian criterion: σ in thin slices")
    parser.add_argument("--slice-axis", type=slice_axis_flag, choices=(0, 1, 2, ALL_AXES),
                        help="default: each volume's largest spacing; all: every axis of an isotropic scan "
                             "(its in-plane ones for a thick-slice scan), three times the pairs")
    parser.add_argument("--input", dest="input_kind", choices=INPUT_KINDS, default=FLOW,
                        help="the generator input stored with each pair, made as `soupgan upsample` makes it: "
                             "flow-guided interpolation (default; what the shipped generators take) or the cubic spline")
    parser.add_argument("--consistent-input", action=argparse.BooleanOptionalAction, default=True,
                        help="thin-to-thick inputs with each slab's mean restored (default on, as the shipped "
                             "thin-to-thick generator takes them)")
    parser.add_argument("--variants", type=int, default=1,
                        help="versions of each volume: the first as measured, the others seeded augmentations "
                             "(contrast, gamma, bias field, noise) made before the degradation (default 1)")
    parser.add_argument("--flow-threads", type=int, default=0,
                        help="threads of the flow per volume (default: the cores per worker on DirectRunner, "
                             "1 on other runners, which run one worker per core)")
    parser.add_argument("--overwrite", action="store_true", help="replace a shard set already in --output")
    parser.add_argument("--resume", action="store_true",
                        help="continue a job into the same --output: volumes already done with the same settings "
                             "from the same bytes are reused, the rest made")
    parser.add_argument("--verify", action="store_true",
                        help="change nothing: check that --output is the finished set these inputs and settings "
                             "make with this code, as it stands (exit 2 naming the first difference)")


def pair_config(args: argparse.Namespace) -> PairConfig:
    return PairConfig(
        scales=args.scales, criteria=args.criteria, patch_size=args.patch_size, stride=args.stride,
        sigma=args.sigma, slice_axis=args.slice_axis, input_kind=args.input_kind,
        consistent=args.consistent_input, variants=args.variants, flow_threads=args.flow_threads,
    )


def job_settings(args: argparse.Namespace, config: PairConfig) -> dict:
    """What the pairs depend on, as the manifest records it."""
    return {
        "schema_version": SCHEMA_VERSION, "code_version": code_version(),
        "patch_size": config.patch_size, "stride": config.stride or config.patch_size,
        "scales": list(config.scales), "criteria": list(config.criteria), "sigma": config.sigma,
        "slice_axis": config.slice_axis, "split_ratios": list(args.split), "seed": args.seed,
        "input": {"kind": config.input_kind, "consistent_thin_to_thick": config.consistent,
                  "units": "normalised: [p0.5, p99.5] of the thick volume -> [0, 1]",
                  "flow_options": FLOW_OPTIONS if config.input_kind == FLOW else None},
        "variants": config.variants,
        "augmentation": dataclasses.asdict(config.augmentation) if config.variants > 1 else None,
        "foreground": {"level": config.foreground_level, "fraction": config.foreground_fraction},
        "patch_layout": "slice axis first", "compression": "GZIP", "shard_per": "input volume",
        "record_order": "per variant, slice axis and criterion, the scales' pairs shuffled (seeded by the volume id)",
    }


def build(pipeline: beam.Pipeline, sources, unmatched, args, config: PairConfig, settings: dict, key: str) -> None:
    """Add the job's steps to `pipeline`: one chain of single-output steps (see beam_jobs.transforms)."""
    (
        pipeline
        | "Sources" >> beam.Create(list(enumerate(sources)))
        | "SpreadVolumes" >> beam.Reshuffle()
        | "VolumeToShard" >> beam.ParDo(VolumeToShard(config, args.split, args.seed, args.output, key, args.resume))
        | "GatherManifest" >> beam.GroupByKey()
        | "WriteManifest" >> beam.ParDo(WriteManifest(args.output, settings, unmatched))
    )


def prepare_output(output: str, overwrite: bool, resume: bool, inputs: int, key: str) -> None:
    """Never mix with an earlier shard set in `output`: refuse, delete it first (--overwrite), or keep only what a
    job with the same key will reuse (--resume; `beam_jobs.resume`)."""
    if overwrite and resume:
        raise InputError("--overwrite starts again and --resume continues: pass one of them")
    finals = [FileSystems.join(output, name) for name in (MANIFEST_FILE, DEAD_LETTERS_FILE)
              if FileSystems.exists(FileSystems.join(output, name))]
    finished = FileSystems.join(output, MANIFEST_FILE) in finals
    if resume:
        if finished and not part_files(output):
            raise InputError(f"{output} holds a shard set made without parts/ (by a version before --resume), "
                             "which --resume cannot check; pass --overwrite to make it again")
        reusable, stale = resume_plan(output, inputs, key)
        logging.getLogger("soupgan").info("shards: resuming %s: %d volume(s) done before with these settings and "
                                          "code; %d stale file(s) deleted", output, reusable, len(stale))
    else:
        stale = shard_files(output) + unfinished_files(output) + part_files(output)
        if (finals or stale) and not overwrite:
            what = "a shard set (manifest.json)" if finished else "an unfinished shard set"
            raise InputError(f"{output} already holds {what}; choose a new --output, or pass --resume to reuse "
                             "its finished volumes or --overwrite to replace it")
    if finals or stale:
        FileSystems.delete(finals + stale)


def run(argv: list[str]) -> dict:
    """Parse arguments (ours, then Beam's), run the job, and return the manifest."""
    parser = argparse.ArgumentParser(
        prog="soupgan shards", description=__doc__.splitlines()[0], epilog=BEAM_FLAGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    args.output = args.output.rstrip("/")
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner
    if not runner:
        options.view_as(StandardOptions).runner = DEFAULT_RUNNER
    elif "DaskRunner" in str(runner) and not any(a.startswith(("--dask_npartitions", "--dask_partition_size")) for a in beam_args):
        options = PipelineOptions([*beam_args, "--dask_partition_size=1"])  # one volume per Dask task, not 128
    if args.variants < 1 or args.flow_threads < 0:
        raise InputError("--variants must be at least 1 and --flow-threads at least 0")
    args.flow_threads = args.flow_threads or flow_threads(options)
    FileSystems.set_options(options)  # credentials/endpoints for s3:// and gs:// while expanding inputs
    sources, unmatched = expand_inputs(args.inputs)
    if not sources:
        reasons = "; ".join(dict.fromkeys(letter["reason"] for letter in unmatched))
        raise InputError(f"no input volume found in {', '.join(args.inputs)}: {reasons}")
    config = pair_config(args)
    settings = job_settings(args, config)
    key = job_key(settings)
    if args.verify:
        if args.resume or args.overwrite:
            raise InputError("--verify changes nothing: leave out --resume and --overwrite")
        return verify_finished_set(args.output, sources, unmatched, settings, key)
    prepare_output(args.output, args.overwrite, args.resume, len(sources), key)
    logging.getLogger("soupgan").info("shards: %d volume source(s), runner %s", len(sources), options.view_as(StandardOptions).runner)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, sources, unmatched, args, config, settings, key)
    result = pipeline.run()
    result.wait_until_finish()
    log_counters(result)
    if hasattr(result, "client"):  # the DaskRunner opens a dask.distributed Client and leaves it open
        result.client.close()
    with FileSystems.open(FileSystems.join(args.output, MANIFEST_FILE)) as handle:
        return json.loads(handle.read())


def flow_threads(options: PipelineOptions) -> int:
    """Threads of the flow per volume by default: the cores each DirectRunner worker has; 1 on other runners,
    whose workers (one per core on Dataflow, Dask's --nworkers) already fill the cores."""
    runner = str(options.view_as(StandardOptions).runner)
    if runner != DEFAULT_RUNNER:
        return 1
    cores = os.cpu_count() or 1
    workers = options.get_all_options().get("direct_num_workers", 1)
    return max(1, cores // (workers or cores))  # Beam reads --direct_num_workers 0 as one worker per core


def log_counters(result) -> None:
    """Log the job's Beam counters where the runner reports them (DirectRunner does; Dask does not)."""
    try:
        counters = result.metrics().query()["counters"]
    except Exception:
        return
    totals = {}
    for counter in counters:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + counter.committed
    logging.getLogger("soupgan").info("shards counters: %s", ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
