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


def scale_ratio(scale: float | str, max_denominator: int = MAX_SCALE_DENOMINATOR) -> tuple[int, int]:
    """s = p/q in lowest terms, from a number or text ('2.5', '8/3'), with q <= `max_denominator` (1: integers
    only); a float read back from a float32 record (8/3 to ~1e-7) still comes back as 8/3. The pair of scale p/q
    is the scan degraded by p (thick slices p thin slices apart) against its thin slices q apart, the grid
    `upsample` writes at p/q (`pipeline.method.degradation.thin_reference`): nothing is interpolated."""
    try:
        value = Fraction(str(scale).strip()) if isinstance(scale, str) else Fraction(float(scale))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise InputError(f"scale {scale!r} is not a number like 2, 2.5 or 8/3") from None
    ratio = value.limit_denominator(max_denominator)
    if abs(ratio - value) > Fraction(1, 10**6):  # distinct ratios with q <= 8 are >= 1/56 apart
        raise InputError(f"scale {scale} is not a ratio p/q with q <= {max_denominator} (like 2.5 or 3.75)"
                         if max_denominator > 1 else f"scale {scale} is not a whole number")
    if ratio < 2:
        raise InputError(f"scale {scale} is below 2")
    return ratio.numerator, ratio.denominator


def scale_label(scale: float) -> str:
    """'2', '2.5', '2.66667': how a scale is named in counts, tables and messages."""
    return f"{scale:g}"


def parse_scales(text: str, fractional: bool = False) -> tuple[float, ...]:
    """'2,3,4' -> (2, 3, 4): integers >= 2, or with `fractional` also ratios p/q with q <= 8 ('2,2.5,8/3' ->
    (2, 2.5, 2.666...); integers stay int, '2.5,5/2' is one scale). See `scale_ratio`."""
    scales = set()
    for part in (part.strip() for part in text.split(",") if part.strip()):
        p, q = scale_ratio(part, MAX_SCALE_DENOMINATOR if fractional else 1)
        scales.add(p if q == 1 else p / q)
    if not scales:
        raise InputError(f"no scale in {text!r}")
    return tuple(sorted(scales))


def parse_fractional_scales(text: str) -> tuple[float, ...]:
    """`parse_scales` with ratios p/q allowed (`soupgan shards` and `soupgan evaluate`)."""
    return parse_scales(text, fractional=True)


def scales_argument(text: str) -> tuple[float, ...]:
    """`parse_fractional_scales` as an argparse `type=`: argparse prints an ArgumentTypeError's reason (a
    ValueError's it hides)."""
    import argparse

    try:
        return parse_fractional_scales(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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
