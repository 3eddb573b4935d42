"""The shards job's Beam steps. Every step has one output and the job is one chain ending in the
manifest, so it is correct on every runner: Beam 2.77's DaskRunner hands all outputs of a multi-output
ParDo (or Partition) to every consumer, only runs ancestors of the last step, and recomputes the
upstream of any side input (which Beam's file sinks use in pre_finalize) — so none of those are used.
"""
from __future__ import annotations

import json
import logging
from collections import Counter

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs.resume import forget_volume, reusable_summary, write_part
from beam_jobs.sources import NIFTI, VolumeSource, dead_letter, source_contents
from beam_jobs.tfrecord_shard import write_shard
from pipeline.config import scale_label
from pipeline.io.dicom_io import read_dicom_series
from pipeline.errors import InputError
from pipeline.io.nifti_io import nifti_from_bytes
from pipeline.data.pairs import PairConfig, patch_pairs
from pipeline.data.records import MANIFEST_FILE, encode_example
from pipeline.data.splits import SPLITS, assign_split
from pipeline.volume import Volume

MANIFEST = "manifest"  # the one key under which summaries and dead letters meet for the manifest
SUMMARY, DEAD = "summary", "dead"
DEAD_LETTERS_FILE = "dead_letters.jsonl"
LOG = logging.getLogger("soupgan.shards")


def read_source(source: VolumeSource) -> tuple[Volume, str]:
    """Read a NIfTI file or a DICOM series: the volume and the sha256 of its bytes (`source_contents`)."""
    contents, sha256 = source_contents(source)
    if source.kind == NIFTI:
        (name, content), = contents
        return nifti_from_bytes(content, name), sha256
    return read_dicom_series(contents, label=source.path.rstrip("/").rsplit("/", 1)[-1]), sha256


def shard_name(split: str, index: int) -> str:
    """Shard of the index-th input (in the driver's stable source order), relative to the output folder."""
    return f"{split}/{split}-{index:05d}.tfrecord.gz"


class VolumeToShard(beam.DoFn):
    """(index, source) -> one GZIP TFRecord shard of the volume's patch pairs, streamed as they are made,
    then its part (`beam_jobs.resume`) and (MANIFEST, summary); a bad volume gives only (MANIFEST, dead letter).
    With `resume`, a volume a job with the same key finished from the same bytes yields its stored summary.

    All per-volume work happens here, once, and the bulk bytes never go through a shuffle: only the
    small summaries travel on to the manifest. Shards are ~100-200 MB for a brain MRI, and identical
    inputs give byte-identical shards.
    """

    def __init__(self, config: PairConfig, split_ratios: tuple[int, int, int], seed: int, output: str,
                 key: str = "", resume: bool = False):
        self.config, self.split_ratios, self.seed, self.output = config, split_ratios, seed, output
        self.key, self.resume = key, resume  # the job's key (`beam_jobs.resume`); reuse finished volumes
        self.read = Metrics.counter("soupgan", "volumes_read")
        self.reused = Metrics.counter("soupgan", "volumes_reused")
        self.failed = Metrics.counter("soupgan", "volumes_failed")
        self.patches = {split: Metrics.counter("soupgan", f"patches_{split}") for split in SPLITS}

    def process(self, indexed):
        index, source = indexed
        stage = "read"
        try:
            volume, sha256 = read_source(source)
            stage = "resume"
            done = reusable_summary(self.output, index, self.key, sha256) if self.resume else None
            if not done:
                stage = "patch"
                pairs = patch_pairs(volume, self.config)
        except Exception as err:  # InputError: bad volume; anything else must not take the others down
            if self.resume:  # what an earlier job made of this input must not outlive its failure now
                forget_volume(self.output, index)
            self.failed.inc()
            reason = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
            LOG.warning("an input failed at %s: %s", stage, type(err).__name__)
            yield MANIFEST, (DEAD, dead_letter(source.path, stage, reason))
            return
        if done:
            self.reused.inc()
            LOG.info("volume %s -> %s: done before, %s reused", volume.volume_id, done["split"], done["shard"])
            yield MANIFEST, (SUMMARY, done)
            return
        split = assign_split(volume.volume_id, self.split_ratios, self.seed)
        counts = Counter()

        def records():
            for pair in pairs:
                counts[f"{pair.criterion}/x{scale_label(pair.scale)}"] += 1
                yield encode_example(pair)

        name = shard_name(split, index)
        total = write_shard(FileSystems.join(self.output, *name.split("/")), records())
        self.read.inc()
        self.patches[split].inc(total)
        LOG.info("volume %s -> %s: %d patch pairs", volume.volume_id, split, total)
        summary = {"volume_id": volume.volume_id, "split": split, "modality": volume.modality,
                   "counts": dict(counts), "shard": name, "sha256": sha256}
        write_part(self.output, index, self.key, summary)
        yield MANIFEST, (SUMMARY, summary)


def build_manifest(parts: list, settings: dict, unmatched: list[dict]) -> tuple[dict, list[dict]]:
    """Combine per-volume summaries and dead letters: (manifest, dead letters sorted)."""
    counts = {split: {"total": 0} for split in SPLITS}
    volumes = {split: set() for split in SPLITS}
    shards = {split: [] for split in SPLITS}
    dead = list(unmatched)
    sources = {}
    read = 0
    for kind, payload in parts:
        if kind == SUMMARY:
            read += 1
            split = payload["split"]
            sources[payload["volume_id"]] = payload["sha256"]
            volumes[split].add(payload["volume_id"])
            shards[split].append(payload["shard"])
            for key, value in payload["counts"].items():
                counts[split][key] = counts[split].get(key, 0) + value
                counts[split]["total"] += value
        else:
            dead.append(payload)
    manifest = {
        **settings,
        "inputs_read": read,
        "inputs_failed": len(dead),
        "counts": counts,
        "volumes": {split: sorted(ids) for split, ids in volumes.items()},
        "shards": {split: sorted(files) for split, files in shards.items()},
        "source_sha256": dict(sorted(sources.items())),  # by volume id: which bytes each volume was made from
        "dead_letters": DEAD_LETTERS_FILE,
    }
    return manifest, sorted(dead, key=lambda letter: (letter["source"], letter["stage"]))


class WriteManifest(beam.DoFn):
    """The last step: writes dead_letters.jsonl and manifest.json once every shard is written."""

    def __init__(self, output: str, settings: dict, unmatched: list[dict]):
        self.output, self.settings, self.unmatched = output, settings, unmatched

    def process(self, keyed):
        _, parts = keyed
        manifest, dead = build_manifest(list(parts), self.settings, self.unmatched)
        with FileSystems.create(FileSystems.join(self.output, DEAD_LETTERS_FILE)) as handle:
            handle.write("".join(json.dumps(letter, sort_keys=True) + "\n" for letter in dead).encode())
        with FileSystems.create(FileSystems.join(self.output, MANIFEST_FILE)) as handle:
            handle.write(json.dumps(manifest, indent=1, sort_keys=True).encode())
        yield manifest
