"""How tinykd starts TensorFlow: oneDNN kernels on every x86 CPU unless the user opts out.

TensorFlow enables oneDNN by itself only on CPUs with neural-network features (its 2.9
release notes); on an AVX2-only CPU its Eigen convolutions trained the demo's teacher 2.7x
slower (tinykd/_keras.py).
Each case runs in a fresh interpreter, since the choice is read once, at import.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import tinykd._keras\n"
    "from tensorflow.python.util import _pywrap_util_port as port\n"
    "print(port.IsMklEnabled())\n"
)


def onednn_enabled(setting: str | None) -> bool:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="oneDNN is TensorFlow's x86 CPU path")
def test_onednn_is_on_by_default_and_the_user_can_turn_it_off():
    assert onednn_enabled(None)
    assert not onednn_enabled("0")
