"""Train/val/test assignment by volume: a seeded hash of the volume id, so a scan never lands in two splits."""
from __future__ import annotations

import hashlib

from pipeline.errors import InputError

SPLITS = ("train", "val", "test")


def parse_split(text: str) -> tuple[int, int, int]:
    """'8,1,1' -> (8, 1, 1): relative weights of train, val and test."""
    try:
        ratios = tuple(int(part) for part in text.split(","))
    except ValueError:
        ratios = ()
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) == 0:
        raise InputError(f"split must be three non-negative integers like 8,1,1, got {text!r}")
    return ratios


def assign_split(volume_id: str, ratios: tuple[int, int, int] = (8, 1, 1), seed: int = 0) -> str:
    """The split of a volume: uniform in [0, 1) from BLAKE2b(seed, id), cut at the cumulative ratios."""
    digest = hashlib.blake2b(f"{seed}:{volume_id}".encode(), digest_size=8).digest()
    position = int.from_bytes(digest, "big") / 2**64 * sum(ratios)
    for split, bound in zip(SPLITS, (ratios[0], ratios[0] + ratios[1], sum(ratios))):
        if position < bound:
            return split
    return SPLITS[-1]
