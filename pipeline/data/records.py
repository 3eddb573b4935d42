"""The TFRecord schema of a patch pair (`tf.train.Example`), its encoder and its plain-Python parser, without
TensorFlow (`pipeline.data.example_proto`); the tf.data parser is `pipeline.data.dataset.parse_batch`.

Schema 2 (written since soupgan 0.5.0): the input is the generator's input exactly as inference makes it from
the thick volume — in normalised units ([p0.5, p99.5] of the thick volume → [0, 1]), flow-guided or spline, with
thin-to-thick's slab means restored when `consistent` — and the target is raw; `window` maps the target as the
serving graph does. It also carries the slice axis, the augmentation variant and a float scale.
Schema 1 (soupgan ≤ 0.4.0, still read): both patches raw, spline inputs only, an integer scale.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.config import check_criterion
from pipeline.data.example_proto import BytesList, Example, Feature, Features, FloatList, Int64List
from pipeline.errors import RecordSchemaError
from pipeline.method.normalization import IntensityWindow

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_FILE = "manifest.json"  # beside the split folders of a shard set: counts, settings, schema version
FLOW, SPLINE = "flow", "spline"
INPUT_KINDS = (FLOW, SPLINE)


def split_pattern(data_dir: str, split: str) -> str:
    """Glob of one split's shards in a shard set written by `soupgan shards`."""
    return f"{str(data_dir).rstrip('/')}/{split}/{split}-*.tfrecord.gz"


@dataclasses.dataclass(frozen=True)
class PatchPair:
    """One training example: the generator's input patch and its HR target, with provenance (schema 2)."""

    input: np.ndarray  # normalised (schema 1: raw)
    target: np.ndarray  # raw
    scale: float
    criterion: str
    volume_id: str
    window: IntensityWindow
    modality: str = "unknown"
    origin: tuple[int, int, int] = (0, 0, 0)  # on the thin grid, slice axis first
    input_kind: str = FLOW
    consistent: bool = False
    slice_axis: int = 0  # of the source volume
    variant: int = 0  # 0: the volume as measured; k > 0: its k-th seeded augmentation
    schema_version: int = SCHEMA_VERSION  # of the record it was read from

    @property
    def input_normalized(self) -> bool:
        """Schema 2 stores the input in normalised units; schema 1 stored it raw."""
        return self.schema_version >= 2


def _bytes(*values: bytes) -> Feature:
    return Feature(bytes_list=BytesList(value=list(values)))


def _ints(*values: int) -> Feature:
    return Feature(int64_list=Int64List(value=[int(v) for v in values]))


def _floats(*values: float) -> Feature:
    return Feature(float_list=FloatList(value=[float(v) for v in values]))


def encode_example(pair: PatchPair) -> bytes:
    """Serialise a patch pair in schema 2; the same pair always gives the same bytes."""
    if pair.input.shape != pair.target.shape or pair.input.ndim != 3:
        raise ValueError(f"input {pair.input.shape} and target {pair.target.shape} must be equal 3D shapes")
    check_criterion(pair.criterion)
    if pair.input_kind not in INPUT_KINDS:
        raise ValueError(f"input kind must be one of {', '.join(INPUT_KINDS)}, got {pair.input_kind!r}")
    feature = {
        "input": _bytes(np.ascontiguousarray(pair.input, dtype="<f4").tobytes()),
        "target": _bytes(np.ascontiguousarray(pair.target, dtype="<f4").tobytes()),
        "patch_shape": _ints(*pair.input.shape),
        "scale": _floats(pair.scale),
        "criterion": _bytes(pair.criterion.encode()),
        "volume_id": _bytes(pair.volume_id.encode()),
        "modality": _bytes(pair.modality.encode()),
        "window": _floats(pair.window.low, pair.window.high),
        "origin": _ints(*pair.origin),
        "input_kind": _bytes(pair.input_kind.encode()),
        "consistent": _ints(pair.consistent),
        "slice_axis": _ints(pair.slice_axis),
        "variant": _ints(pair.variant),
        "schema_version": _ints(SCHEMA_VERSION),
    }
    return Example(features=Features(feature=feature)).SerializeToString(deterministic=True)


def check_version(version: int) -> int:
    if version not in READABLE_VERSIONS:
        raise RecordSchemaError(f"record schema version {version}, this soupgan reads versions "
                                f"{', '.join(map(str, READABLE_VERSIONS))}")
    return version


def decode_example(serialized: bytes) -> PatchPair:
    """Parse one serialised example of either schema in plain Python (tools and tests); raises `RecordSchemaError`."""
    try:
        feature = Example.FromString(serialized).features.feature
        version = check_version(feature["schema_version"].int64_list.value[0])
        shape = tuple(feature["patch_shape"].int64_list.value)
        window = feature["window"].float_list.value
        fields = dict(
            input=np.frombuffer(feature["input"].bytes_list.value[0], dtype="<f4").reshape(shape),
            target=np.frombuffer(feature["target"].bytes_list.value[0], dtype="<f4").reshape(shape),
            criterion=feature["criterion"].bytes_list.value[0].decode(),
            volume_id=feature["volume_id"].bytes_list.value[0].decode(),
            window=IntensityWindow(float(window[0]), float(window[1])),
            modality=feature["modality"].bytes_list.value[0].decode(),
            origin=tuple(int(v) for v in feature["origin"].int64_list.value),
            schema_version=version,
        )
        if version == 1:
            return PatchPair(**fields, scale=int(feature["scale"].int64_list.value[0]), input_kind=SPLINE)
        return PatchPair(**fields, scale=float(feature["scale"].float_list.value[0]),
                         input_kind=feature["input_kind"].bytes_list.value[0].decode(),
                         consistent=bool(feature["consistent"].int64_list.value[0]),
                         slice_axis=int(feature["slice_axis"].int64_list.value[0]),
                         variant=int(feature["variant"].int64_list.value[0]))
    except RecordSchemaError:
        raise
    except Exception as err:
        raise RecordSchemaError(f"not a soupgan patch record ({type(err).__name__}: {err})") from None
