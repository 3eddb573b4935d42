import numpy as np
import pytest
import tensorflow as tf

from pipeline.errors import RecordSchemaError
from pipeline.method.normalization import IntensityWindow
from pipeline.data.dataset import FEATURES, parse_batch
from pipeline.data.records import SCHEMA_VERSION, PatchPair, decode_example, encode_example
from tests.shard_records import encode_v1_example


def make_pair(seed=0, size=8, **overrides):
    rng = np.random.default_rng(seed)
    fields = dict(
        input=rng.normal(size=(size,) * 3).astype(np.float32),
        target=rng.normal(size=(size,) * 3).astype(np.float32),
        scale=4, criterion="thin-to-thick", volume_id="0123456789abcdef",
        window=IntensityWindow(-1024.0, 1800.5), modality="CT", origin=(32, 0, 64),
        input_kind="flow", consistent=True, slice_axis=2, variant=3,
    )
    fields.update(overrides)
    return PatchPair(**fields)


def test_round_trip_is_exact_and_deterministic():
    pair = make_pair()
    serialized = encode_example(pair)
    assert serialized == encode_example(make_pair())
    back = decode_example(serialized)
    np.testing.assert_array_equal(back.input, pair.input)
    np.testing.assert_array_equal(back.target, pair.target)
    assert (back.scale, back.criterion, back.volume_id, back.modality, back.origin) == (4, "thin-to-thick", "0123456789abcdef", "CT", (32, 0, 64))
    assert (back.input_kind, back.consistent, back.slice_axis, back.variant) == ("flow", True, 2, 3)
    assert back.window == pair.window and back.input_normalized and back.schema_version == SCHEMA_VERSION == 2


def test_fractional_scales_are_kept():
    assert decode_example(encode_example(make_pair(scale=2.5))).scale == 2.5
    batch = parse_batch(tf.constant([encode_example(make_pair(scale=2.5))]), patch_size=8)
    assert batch["scale"].dtype == tf.float32 and batch["scale"].numpy().tolist() == [2.5]


def test_schema_1_records_are_still_read_raw_spline_inputs_and_integer_scales():
    old = make_pair(seed=5)
    back = decode_example(encode_v1_example(old))
    np.testing.assert_array_equal(back.input, old.input)
    assert (back.schema_version, back.input_normalized, back.input_kind, back.scale) == (1, False, "spline", 4)
    batch = parse_batch(tf.constant([encode_v1_example(old)] * 2), patch_size=8, version=1)
    np.testing.assert_array_equal(batch["input"][1, ..., 0].numpy(), old.input)
    assert batch["scale"].dtype == tf.float32 and batch["scale"].numpy().tolist() == [4.0, 4.0]
    with pytest.raises(tf.errors.InvalidArgumentError):  # a set's records are parsed with the manifest's schema
        parse_batch(tf.constant([encode_v1_example(old)]), patch_size=8, version=2)


def test_records_are_byte_identical_to_tensorflows_own_example():
    """Encoded without TensorFlow (pipeline.data.example_proto), a record is what tf.train.Example writes."""
    for pair in (make_pair(), make_pair(seed=1, scale=2.5, consistent=False, input_kind="spline")):
        serialized = encode_example(pair)
        assert tf.train.Example.FromString(serialized).SerializeToString(deterministic=True) == serialized


def test_schema_has_no_path_or_name_fields():
    example = tf.train.Example.FromString(encode_example(make_pair()))
    assert set(example.features.feature) == {
        "input", "target", "patch_shape", "scale", "criterion", "volume_id", "modality", "window", "origin", "schema_version",
        "input_kind", "consistent", "slice_axis", "variant",
    } == set(FEATURES[SCHEMA_VERSION])  # what tf.data parses is what is written
    assert example.features.feature["schema_version"].int64_list.value[0] == SCHEMA_VERSION


def test_in_graph_parse_matches():
    pairs = [make_pair(seed) for seed in range(3)]
    batch = parse_batch(tf.constant([encode_example(p) for p in pairs]), patch_size=8)
    assert batch["input"].shape == (3, 8, 8, 8, 1)
    for i, pair in enumerate(pairs):
        np.testing.assert_array_equal(batch["input"][i, ..., 0].numpy(), pair.input)
        np.testing.assert_array_equal(batch["target"][i, ..., 0].numpy(), pair.target)
    np.testing.assert_allclose(batch["window"].numpy()[0], [-1024.0, 1800.5])
    assert batch["scale"].numpy().tolist() == [4.0, 4.0, 4.0]


def _with_version(version):
    example = tf.train.Example.FromString(encode_example(make_pair()))
    example.features.feature["schema_version"].int64_list.value[0] = version
    return example.SerializeToString()


def test_other_schema_versions_and_garbage_are_refused():
    with pytest.raises(RecordSchemaError, match="schema version 99, this soupgan reads versions 1, 2"):
        decode_example(_with_version(99))
    with pytest.raises(tf.errors.InvalidArgumentError, match="schema version"):
        parse_batch(tf.constant([_with_version(99)]), patch_size=8)
    with pytest.raises(RecordSchemaError, match="schema version 3"):
        parse_batch(tf.constant([encode_example(make_pair())]), patch_size=8, version=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="patch shape"):
        parse_batch(tf.constant([encode_example(make_pair())]), patch_size=32)
    with pytest.raises(RecordSchemaError, match="not a soupgan patch record"):
        decode_example(b"\x08\x96\x01garbage")


def test_mismatched_patches_are_refused():
    with pytest.raises(ValueError, match="must be equal 3D shapes"):
        encode_example(make_pair(target=np.zeros((8, 8, 4), np.float32)))
