"""Shared checks every custom Keras layer and model here must pass (after keras-hub's layer test helper):
a `.keras` round trip *with random weights* (so a load that restores nothing fails), a mixed_float16 run
that matches float32, and an XLA-compiled call that matches the eager one."""
import json

import keras
import numpy as np
import tensorflow as tf

from model.networks.generator import dtype_policy

RNG = np.random.default_rng(0)


def randomise(model, std=0.1, seed=0):
    """Give every weight (zero-initialised ones too) random values, so comparisons compare something."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, std, weight.shape).astype(weight.dtype))


def plain_config(model):
    """A model's config without its own name, tuples as lists (as a saved file gives them back)."""
    return json.loads(json.dumps({k: v for k, v in model.get_config().items() if k != "name"}, default=str))


def round_trip(model, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    return keras.saving.load_model(path)


def assert_round_trip(model, call, tmp_path):
    """Save and load a model with random weights; the loaded one has the same config and gives the same output."""
    randomise(model)
    loaded = round_trip(model, tmp_path)
    assert type(loaded) is type(model)
    assert plain_config(loaded) == plain_config(model)
    np.testing.assert_array_equal(np.asarray(call(loaded)), np.asarray(call(model)))
    return loaded


def assert_mixed_precision_matches(factory, call, atol):
    """`factory()` made under mixed_float16 computes in float16, keeps float32 variables, and with the same
    weights as a float32 one gives the same result to float16 accuracy."""
    reference = factory()
    call(reference)
    randomise(reference)
    with dtype_policy("mixed_float16"):
        mixed = factory()
        call(mixed)
    assert mixed.compute_dtype == "float16"
    assert all(weight.dtype == "float32" for weight in mixed.weights)
    mixed.set_weights(reference.get_weights())
    out_mixed, out_reference = np.asarray(call(mixed), np.float32), np.asarray(call(reference))
    assert np.isfinite(out_mixed).all()
    np.testing.assert_allclose(out_mixed, out_reference, atol=atol)


def assert_jit_matches(model, call, atol=1e-5):
    """The model's call compiled with XLA gives what the eager call gives."""
    randomise(model)
    eager = np.asarray(call(model))
    compiled = tf.function(lambda: call(model), jit_compile=True)()
    np.testing.assert_allclose(np.asarray(compiled), eager, atol=atol)
