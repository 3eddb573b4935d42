"""Resuming the shards job (`soupgan shards --resume`): each volume's summary is kept beside its shard as
`parts/NNNNN.json` (by input position), written after the shard, with the job's key: the sha256 of its settings
and of the code that makes pairs. A rerun with the same key reuses a volume whose part it wrote from the same
source bytes and whose shard is there; anything else is made again. With the flow a volume takes minutes to an
hour, so a job killed after hours loses only the volumes it was making.
"""
from __future__ import annotations

import hashlib
import json
import os

from apache_beam.io.filesystems import FileSystems

import beam_jobs
import pipeline
from beam_jobs.sources import VolumeSource, match_paths, source_contents
from pipeline.data.records import MANIFEST_FILE
from pipeline.data.splits import SPLITS
from pipeline.errors import InputError

PARTS = "parts"


def code_hash() -> str:
    """sha256 of the `pipeline` and `beam_jobs` packages' sources, so a rerun after a code change (which the
    package version alone does not show in a development install) makes every volume again."""
    digest = hashlib.sha256()
    for package in (pipeline, beam_jobs):
        root = os.path.dirname(os.path.abspath(package.__file__))
        for folder, folders, names in os.walk(root):
            folders.sort()
            for name in sorted(name for name in names if name.endswith(".py")):
                path = os.path.join(folder, name)
                digest.update(f"{package.__name__}/{os.path.relpath(path, root)}\n".encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()


def job_key(settings: dict) -> str:
    """What a reused volume must have been made with: the manifest's settings (scales, criteria, patch, input,
    variants, split, seed...) and the code."""
    return hashlib.sha256(json.dumps({"settings": settings, "code": code_hash()}, sort_keys=True).encode()).hexdigest()


def part_path(output: str, index: int) -> str:
    return FileSystems.join(output, PARTS, f"{index:05d}.json")


def part_files(output: str) -> list[str]:
    return match_paths(FileSystems.join(output, PARTS, "*.json"))


def read_part(output: str, index: int) -> dict | None:
    """{"key", "summary"} of the index-th input's finished volume, or None (none, or not a whole part)."""
    path = part_path(output, index)
    if not FileSystems.exists(path):
        return None
    try:
        with FileSystems.open(path) as handle:
            part = json.loads(handle.read())
        summary = part["summary"]
        if isinstance(part["key"], str) and isinstance(summary["shard"], str) and isinstance(summary["sha256"], str):
            return part
    except (ValueError, KeyError, TypeError):
        pass
    return None


def write_part(output: str, index: int, key: str, summary: dict) -> None:
    """Record a finished volume; called once its shard is in place, so a part always names a whole shard."""
    with FileSystems.create(part_path(output, index)) as handle:
        handle.write(json.dumps({"key": key, "summary": summary}, indent=1, sort_keys=True).encode())


def forget_volume(output: str, index: int) -> None:
    """Delete the index-th input's part and the shard it names: the volume is made again or has failed now."""
    delete_volume(output, index, read_part(output, index))


def delete_volume(output: str, index: int, part: dict | None) -> None:
    """Delete the index-th input's part file and the shard `part` (that file as read, or None) names."""
    paths = [part_path(output, index)] + ([FileSystems.join(output, part["summary"]["shard"])] if part else [])
    paths = [path for path in paths if FileSystems.exists(path)]
    if paths:
        FileSystems.delete(paths)


def reusable_summary(output: str, index: int, key: str, sha256: str) -> dict | None:
    """The summary of a volume a job with this key already made from these bytes, else None (after forgetting
    what was there: the volume made again may land in another split)."""
    part = read_part(output, index)
    if part and part["key"] == key and part["summary"]["sha256"] == sha256 \
            and FileSystems.exists(FileSystems.join(output, part["summary"]["shard"])):
        return part["summary"]
    delete_volume(output, index, part)
    return None


def shard_files(output: str) -> list[str]:
    return [path for split in SPLITS for path in match_paths(FileSystems.join(output, split, "*.tfrecord.gz"))]


def unfinished_files(output: str) -> list[str]:
    """Shards a killed job left half written (`write_shard`'s temporary names)."""
    return [path for split in SPLITS for path in match_paths(FileSystems.join(output, split, "*.tfrecord.gz.tmp-*"))]


def resume_plan(output: str, inputs: int, key: str) -> tuple[int, list[str]]:
    """(volumes a resumed job may reuse, the files it must delete first): parts made with another key, unreadable
    or of inputs beyond the current `inputs`, half-written shards, and every shard no kept part names."""
    kept, stale = set(), list(unfinished_files(output))
    for path in part_files(output):
        index = path.rsplit("/", 1)[-1][: -len(".json")]
        part = read_part(output, int(index)) if index.isdigit() else None
        if part is None or part["key"] != key or int(index) >= inputs:
            stale.append(path)
        else:
            kept.add(FileSystems.join(output, part["summary"]["shard"]))
    return len(kept), stale + [path for path in shard_files(output) if path not in kept]


def verify_finished_set(output: str, sources: list[VolumeSource], unmatched: list[dict], settings: dict,
                        key: str) -> dict:
    """The manifest of `output` when it is the finished set these inputs make with these settings and this code,
    as it stands; otherwise InputError naming the first difference. Hashes every source; writes nothing."""
    if unmatched:
        raise InputError(f"{len(unmatched)} input(s) matched no volume ({unmatched[0]['reason']}): a job would "
                         f"record them as failed")
    path = FileSystems.join(output, MANIFEST_FILE)
    if not FileSystems.exists(path):
        raise InputError(f"{output} holds no finished shard set (no {MANIFEST_FILE})")
    with FileSystems.open(path) as handle:
        manifest = json.loads(handle.read())
    differing = [name for name, value in json.loads(json.dumps(settings)).items() if manifest.get(name) != value]
    if differing:
        raise InputError(f"{output} was made with other settings ({', '.join(differing)})")
    if manifest.get("inputs_read") != len(sources) or manifest.get("inputs_failed"):
        raise InputError(f"{output} was made from {manifest.get('inputs_read')} volume(s) with "
                         f"{manifest.get('inputs_failed')} failed, not from these {len(sources)}")
    named = set()
    for index, source in enumerate(sources):
        part = read_part(output, index)
        if part is None:
            raise InputError(f"{output} has no finished volume for input {index + 1} of {len(sources)}")
        if part["key"] != key:
            raise InputError(f"{output} was made by other code (the pipeline or beam_jobs sources differ)")
        shard = FileSystems.join(output, part["summary"]["shard"])
        named.add(shard)
        if not FileSystems.exists(shard):
            raise InputError(f"{output} lacks {part['summary']['shard']}, the shard of input {index + 1}")
        if part["summary"]["sha256"] != source_contents(source)[1]:
            raise InputError(f"input {index + 1} of {len(sources)} is not the bytes {output} was made from")
    strays = sorted(set(shard_files(output)) - named) + unfinished_files(output)
    if strays:  # training reads every shard of a split folder
        raise InputError(f"{output} holds {len(strays)} shard file(s) no volume of it made, e.g. {strays[0]}")
    return manifest
