"""The console script starts TensorFlow with oneDNN's CPU kernels on, unless the user's environment says otherwise."""
import os
import platform
import subprocess
import sys

import pytest

from soupgan.tensorflow_env import apply_tensorflow_defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TF 2.16's own answer to "are oneDNN kernels in use?", after CPU detection and TF_ENABLE_ONEDNN_OPTS.
PROBE = "import soupgan.cli; from tensorflow.python.util import _pywrap_util_port as port; print(port.IsMklEnabled())"


def test_defaults_fill_only_unset_variables(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    apply_tensorflow_defaults()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="TensorFlow's oneDNN kernels are an x86-64 build option")
@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False")])
def test_console_script_turns_onednn_on_before_tensorflow_loads(setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == expected
