"""TensorFlow settings read once, when TensorFlow is imported: entry points (the console script, the tests,
the benchmarks) apply them first. A value already in the environment always wins.

TF 2.16's x86 wheel turns its oneDNN kernels on by itself only on CPUs with AVX-512 (VNNI, BF16, AMX); on an
AVX2-only CPU it runs Eigen's 3D convolutions instead, which made a training step 4.5x and whole-volume
super-resolution 3.0x slower in-process, 2.6x through the console script (BENCHMARKS.md). oneDNN sums in another order: results differ by float32 round-off.
"""
from __future__ import annotations

import os

DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ start-up chatter (CUDA factories, CPU flags) off stderr; real failures still raise
    "TF_ENABLE_ONEDNN_OPTS": "1",
}


def apply_tensorflow_defaults() -> None:
    """Put DEFAULTS into os.environ where unset; takes effect only before TensorFlow's first import."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
