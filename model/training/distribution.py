"""tf.distribute strategies for training: default, MirroredStrategy (GPUs, or N logical CPU devices) and
MultiWorkerMirroredStrategy from TF_CONFIG; plus which process is the chief that writes the run."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from model.training.train_config import STRATEGIES
from pipeline.errors import InputError


def split_cpu(replicas: int) -> None:
    """Expose the host CPU as `replicas` logical devices (must run before TensorFlow initialises them)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:  # already initialised: fine if it already has the layout asked for
        if len(tf.config.list_logical_devices("CPU")) != replicas:
            raise


def make_strategy(name: str, replicas: int | None = None) -> tf.distribute.Strategy:
    """The strategy a run trains under; `replicas` picks GPUs, or splits the CPU when there is none."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if replicas is not None and replicas < 1:
        raise InputError(f"--replicas must be at least 1 (got {replicas})")
    if name == "default":
        if replicas not in (None, 1):
            raise InputError("--replicas needs --strategy mirrored (or multiworker)")
        return tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise InputError("--strategy multiworker needs TF_CONFIG (the cluster and this worker's task)")
        if not gpus and replicas and replicas > 1:
            split_cpu(replicas)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if gpus:
        count = replicas or len(gpus)
        if count > len(gpus):
            raise InputError(f"--replicas {replicas} but this host has {len(gpus)} GPU(s)")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(count)])
    split_cpu(replicas or 1)
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this is a non-chief worker of a multi-worker cluster (those must not write the run)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
