"""Method constants shared by every stage (scales, criteria, patch size) and parsers for their CLI flags."""
from __future__ import annotations

from fractions import Fraction

from pipeline.errors import InputError

SCALES = (2, 3, 4, 5, 6)
THIN_TO_THIN, THIN_TO_THICK, GAUSSIAN = "thin-to-thin", "thin-to-thick", "gaussian"
CRITERIA = (THIN_TO_THIN, THIN_TO_THICK, GAUSSIAN)
DEFAULT_CRITERIA = (THIN_TO_THIN, THIN_TO_THICK)
PATCH_SIZE = 32
MAX_SCALE_DENOMINATOR = 8  # a fractional training scale p/q degrades by p and keeps every q-th thin slice


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; expected one of {', '.join(CRITERIA)}")
    return criterion


def parse_scales(text: str, fractional: bool = False) -> tuple[float, ...]:
    """'2,3,4' -> (2, 3, 4): every scale >= 2 and an integer, or with `fractional` also a ratio p/q with
    q <= 8 ('2,2.5' -> (2, 2.5); integers stay int): the shards job makes a fractional scale's pairs from slices
    the scan has (`pipeline.method.degradation.scale_ratio`)."""
    scales = []
    for part in (part.strip() for part in text.split(",") if part.strip()):
        try:
            ratio = Fraction(part).limit_denominator(MAX_SCALE_DENOMINATOR if fractional else 1)
        except (ValueError, ZeroDivisionError):
            raise InputError(f"scales must be numbers like 2,3,4, got {text!r}") from None
        if abs(float(ratio) - float(part)) > 1e-9:
            raise InputError(f"scale {part} is not a ratio p/q with q <= {MAX_SCALE_DENOMINATOR} (like 2.5 or 3.75)"
                             if fractional else f"scales must be integers like 2,3,4, got {text!r}")
        scales.append(int(ratio) if ratio.denominator == 1 else float(ratio))
    if not scales or min(scales) < 2:
        raise InputError(f"scales must be >= 2, got {text!r}")
    return tuple(sorted(set(scales)))


def parse_fractional_scales(text: str) -> tuple[float, ...]:
    """`parse_scales` with ratios p/q allowed (the shards job's --scales)."""
    return parse_scales(text, fractional=True)


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
