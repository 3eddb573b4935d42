"""Real tf.distribute strategies on this CPU: MirroredStrategy on 2 logical devices against a single
device, and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 from TF_CONFIG."""
import json
import os
import socket
import subprocess
import sys

import pytest

from model.training.distribution import native_stderr_held
from tests.model.train_cli import TINY
from tests.test_cli import ROOT, soupgan_command


@pytest.mark.slow
def test_mirrored_step_on_two_logical_cpus_matches_a_single_device_step():
    """SGD makes a wrong loss scaling visible (Adam would hide a constant factor)."""
    result = subprocess.run([sys.executable, "-m", "tests.model.distributed_step", "sgd"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    for key in ("loss", "mse", "perceptual", "adversarial", "d_loss"):
        assert report["mirrored"][key] == pytest.approx(report["single"][key], rel=1e-4), key
    assert report["max_weight_change"] > 1e-4  # the step did move the weights...
    assert report["max_weight_difference"] < 1e-3 * report["max_weight_change"]  # ...identically


def test_a_validation_pass_that_leaves_a_replica_empty_has_the_per_pair_mean():
    """5 pairs in batches of 4 on 2 replicas: the last batch gives one replica nothing, which must add nothing
    (not NaN) to the mean; nor may the end of the pass add a phantom batch (keras-team/keras#23084)."""
    result = subprocess.run([sys.executable, "-m", "tests.model.distributed_step", "evaluate"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["loss"] == pytest.approx(report["reference"], rel=1e-5)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_two_workers(shard_set, tmp_path) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of two `soupgan train --strategy multiworker` processes on free ports."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                       "task": {"type": "worker", "index": index}})}
        out = str(tmp_path / f"run{index}")
        command = soupgan_command("train", "--data", shard_set, "--out", out, "--strategy", "multiworker",
                                  "--epochs", "1", "--steps-per-epoch", "3", *TINY)
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=300) for process in processes]
    return [(process.returncode, *output) for process, output in zip(processes, outputs)]


def test_native_stderr_is_held_and_given_back_unless_the_failure_is_reported_instead(capfd):
    with native_stderr_held(dropped=(KeyError,)):
        os.write(2, b"native note\n")
    with pytest.raises(ValueError), native_stderr_held(dropped=(KeyError,)):
        os.write(2, b"before an unexpected failure\n")
        raise ValueError
    with pytest.raises(KeyError), native_stderr_held(dropped=(KeyError,)):
        os.write(2, b"dump of a reported failure\n")
        raise KeyError
    assert capfd.readouterr().err == "native note\nbefore an unexpected failure\n"


def test_a_worker_whose_port_is_taken_exits_2_with_one_line(shard_set, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": [address, "127.0.0.1:1"]},
                                                       "task": {"type": "worker", "index": 0}})}
        result = subprocess.run(soupgan_command("train", "--data", shard_set, "--out", str(tmp_path / "run"),
                                                "--strategy", "multiworker", *TINY),
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"soupgan train: error: --strategy multiworker: this worker could not serve at "
                               f"{address}, its address in TF_CONFIG (Could not start gRPC server)")


@pytest.mark.slow
def test_multiworker_two_processes_from_tf_config(shard_set, tmp_path):
    for attempt in range(3):  # a free port can be taken by another process before TensorFlow binds it: try anew
        results = run_two_workers(shard_set, tmp_path / f"attempt{attempt}")
        if not any("could not serve at" in stderr for _, _, stderr in results):
            break
    for code, _, stderr in results:
        assert code == 0, stderr[-2000:]
    summaries = [json.loads(stdout.strip().splitlines()[-1]) for _, stdout, _ in results]
    assert [summary["replicas"] for summary in summaries] == [2, 2]
    assert summaries[0]["last"]["loss"] == pytest.approx(summaries[1]["last"]["loss"], rel=1e-5)
    runs = tmp_path / f"attempt{attempt}"
    assert os.path.exists(runs / "run0" / "checkpoints" / "state.json")  # the chief writes the run
    assert not os.path.exists(runs / "run1" / "checkpoints")  # the other worker does not
