"""Method constants shared by every stage (scales, criteria, patch size) and parsers for their CLI flags."""
from __future__ import annotations

from pipeline.errors import InputError

SCALES = (2, 3, 4, 5, 6)
THIN_TO_THIN, THIN_TO_THICK, GAUSSIAN = "thin-to-thin", "thin-to-thick", "gaussian"
CRITERIA = (THIN_TO_THIN, THIN_TO_THICK, GAUSSIAN)
DEFAULT_CRITERIA = (THIN_TO_THIN, THIN_TO_THICK)
PATCH_SIZE = 32


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; expected one of {', '.join(CRITERIA)}")
    return criterion


def parse_scales(text: str) -> tuple[int, ...]:
    """'2,3,4' -> (2, 3, 4); every scale an integer >= 2."""
    try:
        scales = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"scales must be integers like 2,3,4, got {text!r}") from None
    if not scales or min(scales) < 2:
        raise InputError(f"scales must be integers >= 2, got {text!r}")
    return tuple(sorted(set(scales)))


def parse_criteria(text: str) -> tuple[str, ...]:
    """'thin-to-thin,thin-to-thick' -> a tuple of known criteria, in the order given."""
    criteria = tuple(dict.fromkeys(check_criterion(part.strip()) for part in text.split(",") if part.strip()))
    if not criteria:
        raise InputError("at least one criterion is needed")
    return criteria


def code_version() -> str:
    """The installed soupgan's version (recorded with what it makes: shards, weights)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("soupgan")
    except PackageNotFoundError:
        return "unknown (not installed)"
