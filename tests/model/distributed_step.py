"""Run as a script (TensorFlow must split the CPU before it starts) on 2 logical CPU devices.
`sgd` / `adam`: one stage-2 training step on the same global batch under the default strategy and under
MirroredStrategy; prints JSON: the two steps' logs and the largest weight difference after the step.
`evaluate`: stage 1's evaluation under MirroredStrategy of a pass of unknown length whose last batch leaves one
replica empty; prints JSON: its loss and the per-pair MSE computed apart."""
import json
import sys

import keras
import numpy as np
import tensorflow as tf

from model.networks.discriminator import build_discriminator
from model.training.distribution import make_strategy
from model.training.gan import SoupGAN
from model.networks.generator import SoupGenerator
from model.networks.perceptual import TriPlanarPerceptualLoss

SHAPE = (4, 16, 16, 16, 1)


def batch():
    rng = np.random.default_rng(0)
    target = rng.random(SHAPE, dtype=np.float32)
    image = target + rng.normal(0, 0.1, SHAPE).astype(np.float32)
    inputs = {"image": image, "scale": np.array([2, 3, 2, 3], np.float32)}
    return tf.data.Dataset.from_tensors((inputs, target))


def trainer(optimizer: str):
    keras.utils.set_random_seed(0)
    model = SoupGAN(SoupGenerator(filters=4, blocks=1), build_discriminator(4, 2), TriPlanarPerceptualLoss(None),
                    perceptual_weight=1e4)
    model.build({"image": (None, *SHAPE[1:]), "scale": (None,)})
    make = (lambda: keras.optimizers.SGD(0.5)) if optimizer == "sgd" else (lambda: keras.optimizers.Adam(1e-3))
    model.compile(make(), d_optimizer=make())
    model.build_optimizers()
    return model


def one_step(strategy, optimizer, initial):
    with strategy.scope():
        model = trainer(optimizer)
        if initial is not None:
            model.set_weights(initial)
    before = model.get_weights()
    history = model.fit(batch(), epochs=1, steps_per_epoch=1, verbose=0)
    return before, model.get_weights(), {key: float(value[-1]) for key, value in history.history.items()}


def main(optimizer):
    mirrored = make_strategy("mirrored", 2)
    initial, single_after, single_logs = one_step(tf.distribute.get_strategy(), optimizer, None)
    _, mirrored_after, mirrored_logs = one_step(mirrored, optimizer, initial)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single_after, initial))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(single_after, mirrored_after))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "single": single_logs, "mirrored": mirrored_logs,
                      "max_weight_change": moved, "max_weight_difference": diff}))


def evaluate_partial_pass():
    mirrored = make_strategy("mirrored", 2)
    rng = np.random.default_rng(1)
    target = rng.random((5, *SHAPE[1:]), dtype=np.float32)
    inputs = {"image": target + rng.normal(0, 0.1, target.shape).astype(np.float32),
              "scale": np.array([2, 3, 2, 3, 4], np.float32)}
    # unknown length and no static batch size, as a validation pass from shards: batches of 4 and 1
    data = tf.data.Dataset.from_tensor_slices((inputs, target)).filter(lambda *_: True).batch(4)
    with mirrored.scope():
        keras.utils.set_random_seed(0)
        model = SoupGAN(SoupGenerator(filters=4, blocks=1))
        model.build({"image": (None, *SHAPE[1:]), "scale": (None,)})
        model.compile(keras.optimizers.Adam(1e-3))
    logs = model.evaluate(data, verbose=0, return_dict=True)
    prediction = model.generator.predict(inputs, verbose=0)
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "loss": float(logs["loss"]),
                      "reference": float(np.mean((prediction - target) ** 2))}))


if __name__ == "__main__":
    evaluate_partial_pass() if sys.argv[1] == "evaluate" else main(sys.argv[1])
