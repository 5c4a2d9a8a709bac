"""The two PyTorch porting examples run, check themselves and stay cheap."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize(
    "script, expected",
    [
        (
            "pytorch_ndrplz_port.py",
            ["concatenated-conv checkpoint -> ConvLSTM2D", "convlstm: next-frame MSE"],
        ),
        (
            "pytorch_openstl_rollout.py",
            ["cell loop vs layer on the same frames", "fa: training rollout MSE"],
        ),
    ],
)
def test_example_runs_and_checks_itself(script, expected):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = _cpu_seconds_of_children()
    # the examples assert their own claims (exact port / cell = layer, the fit improves);
    # the wall-clock limit only guards against a hang on a busy machine
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    cpu = _cpu_seconds_of_children() - before
    assert done.returncode == 0, done.stderr[-2000:]
    for line in expected:
        assert line in done.stdout, done.stdout
    assert cpu < 20, f"{script} used {cpu:.1f} s of CPU (budget 20 s)"
