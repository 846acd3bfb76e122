"""Ctrl-C at several moments (imports, the process pool starting, trials running) of a real
``python -m trainlab.cli`` child: exit code 130 and the one line ``trainlab: interrupted``."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def interrupt(args, delay: float, tmp_path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-m", "trainlab.cli", *args, "--store", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    return child.returncode, out, err


BENCH = ["bench", "-w", "mnist1d_mlp", "-a", "adamw", "--trials", "1", "--max-runtime", "60"]
RUN = ["run", "-w", "mnist1d_mlp", "-a", "adamw", "--threads", "1"]


@pytest.mark.parametrize(
    "args, delay",
    [
        (BENCH + ["--jobs", "2"], 0.3),  # importing
        (BENCH + ["--jobs", "2"], 1.5),  # the pool starting
        (BENCH + ["--jobs", "2"], 4.0),  # trials running
        (RUN, 0.8),
        (RUN, 3.0),
    ],
)
def test_ctrl_c_is_one_line_and_exit_130(tmp_path, args, delay):
    code, out, err = interrupt(args, delay, tmp_path)
    assert code == 130, err
    # one line (a library interrupted mid-import may leave a blank line before it)
    assert err.strip() == "trainlab: interrupted", err
