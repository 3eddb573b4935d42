"""Resuming the shards job (`soupgan shards --resume`): each volume's summary is kept beside its shard as
`parts/NNNNN.json` (input index), written after the shard, with the key of the job's settings. A rerun with
the same settings reuses a volume whose part matches the job key and the source's sha256 and whose shard is
there; anything else is made again. With the flow a volume takes minutes to an hour, so a job killed after
hours loses only the volumes it was making.
"""
from __future__ import annotations

import hashlib
import json

from apache_beam.io.filesystems import FileSystems

from beam_jobs.sources import match_paths
from pipeline.data.splits import SPLITS

PARTS = "parts"


def job_key(settings: dict) -> str:
    """The sha256 of everything the pairs depend on (the manifest's settings: code version, scales, split...)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def part_path(output: str, index: int) -> str:
    return FileSystems.join(output, PARTS, f"{index:05d}.json")


def read_part(output: str, index: int) -> dict | None:
    """{"key", "summary"} of the index-th input's finished volume, or None (none, or unreadable)."""
    path = part_path(output, index)
    if not FileSystems.exists(path):
        return None
    try:
        with FileSystems.open(path) as handle:
            part = json.loads(handle.read())
        return part if {"key", "summary"} <= set(part) else None
    except ValueError:
        return None


def write_part(output: str, index: int, key: str, summary: dict) -> None:
    """Record a finished volume; called once its shard is in place, so a part always names a whole shard."""
    with FileSystems.create(part_path(output, index)) as handle:
        handle.write(json.dumps({"key": key, "summary": summary}, indent=1, sort_keys=True).encode())


def reusable_summary(output: str, index: int, key: str, sha256: str) -> dict | None:
    """The summary of a volume already done by a job with these settings from these bytes, else None; a part
    that does not match has its shard deleted, since the volume made again may land in another split."""
    part = read_part(output, index)
    if part is None:
        return None
    shard = FileSystems.join(output, part["summary"]["shard"])
    if part["key"] == key and part["summary"]["sha256"] == sha256 and FileSystems.exists(shard):
        return part["summary"]
    FileSystems.delete([path for path in (shard, part_path(output, index)) if FileSystems.exists(path)])
    return None


def shard_files(output: str) -> list[str]:
    return [path for split in SPLITS for path in match_paths(FileSystems.join(output, split, "*.tfrecord.gz"))]


def unfinished_files(output: str) -> list[str]:
    """Shards a killed job left half written (`write_shard`'s temporary names)."""
    return [path for split in SPLITS for path in match_paths(FileSystems.join(output, split, "*.tfrecord.gz.tmp-*"))]


def stale_files(output: str, inputs: int) -> list[str]:
    """What a resumed job must not find: half-written shards, parts that cannot be read or belong to inputs
    beyond the current `inputs`, and every shard no remaining part names (the job reuses or replaces the rest)."""
    kept, stale = set(), list(unfinished_files(output))
    for path in match_paths(FileSystems.join(output, PARTS, "*.json")):
        index = path.rsplit("/", 1)[-1][: -len(".json")]
        part = read_part(output, int(index)) if index.isdigit() else None
        if part is None or int(index) >= inputs:
            stale.append(path)
        else:
            kept.add(FileSystems.join(output, part["summary"]["shard"]))
    return stale + [path for path in shard_files(output) if path not in kept]
