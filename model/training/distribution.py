"""tf.distribute strategies for training: default, MirroredStrategy (GPUs, or N logical CPU devices) and
MultiWorkerMirroredStrategy from TF_CONFIG; plus which process is the chief that writes the run."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile

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
        address = task_address(os.environ["TF_CONFIG"])
        if not gpus and replicas and replicas > 1:
            split_cpu(replicas)
        try:  # a port in use makes TF's gRPC dump a JSON error tree on stderr
            with native_stderr_held(dropped=(tf.errors.UnknownError,)):
                return tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.UnknownError as err:  # gRPC says only that it could not start
            raise InputError(f"--strategy multiworker: this worker could not serve at {address}, its address in "
                             f"TF_CONFIG ({err.message}); is the port in use, or the host not this machine?") from None
    if gpus:
        count = replicas or len(gpus)
        if count > len(gpus):
            raise InputError(f"--replicas {replicas} but this host has {len(gpus)} GPU(s)")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(count)])
    split_cpu(replicas or 1)
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


@contextlib.contextmanager
def native_stderr_held(dropped: tuple[type[BaseException], ...]):
    """Hold what native code writes to file descriptor 2 during the block and write it out after, unless the
    block raises one of `dropped` (which the caller reports in one line instead)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        write_back = True
        try:
            yield
        except dropped:
            write_back = False
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if write_back:
                held.seek(0)
                sys.stderr.buffer.write(held.read())
                sys.stderr.flush()


def task_address(tf_config: str) -> str:
    """This worker's host:port in TF_CONFIG, or a one-line error for a TF_CONFIG that does not name one."""
    try:
        spec = json.loads(tf_config)
        task = spec["task"]
        index = int(task["index"])
        if index < 0:
            raise IndexError(index)
        return spec["cluster"][task["type"]][index]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InputError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, "task": '
                         '{"type": "worker", "index": 0}}, naming this task in the cluster') from None


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this is a non-chief worker of a multi-worker cluster (those must not write the run)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
