"""``-a algoperf:PATH`` end to end in ``python -m trainlab`` processes: runs to a target on
digits_cnn and charlm_gpt, and a benchmark whose workers resolve the stored name and record a
crashing trial as failed while the benchmark goes on. Marked slow (processes, training)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.bench.store import Store

HERE = Path(__file__).parent / "submissions"
SRC = str(Path(__file__).resolve().parents[2] / "src")
NADAMW = f"algoperf:{HERE / 'nadamw_cosine.py'}"
#: targets a few dozen steps reach (the class targets need hundreds to thousands of steps)
EASY = {"digits_cnn": {"metric": "error_rate", "value": 0.3, "higher_is_better": False},
        "charlm_gpt": {"metric": "bits_per_char", "value": 4.0, "higher_is_better": False}}
pytestmark = pytest.mark.slow


def trainlab(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "trainlab", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.fixture
def targets(tmp_path) -> Path:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"workloads": EASY}))
    return path


@pytest.mark.parametrize("workload", ["digits_cnn", "charlm_gpt"])
def test_run_reaches_a_target(workload, targets, tmp_path):
    proc = trainlab("run", "-w", workload, "-a", NADAMW, "--hparams",
                    HERE / "nadamw_hparams.json", "--eval-every-steps", 10, "--max-steps", 60,
                    "--targets", targets, "--threads", 1, "--json", "--store", tmp_path / "s.db",
                    cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "reached" and out["steps_to_target"] <= 60
    assert out["algorithm"].endswith(f"?hparams={(HERE / 'nadamw_hparams.json').resolve()}")
    assert out["hyperparameters"]["learning_rate"] == 0.004
    # get_batch_size knows only AlgoPerf's workloads: said once, as one line
    assert proc.stderr.count("trainlab: warning: nadamw_cosine.py: get_batch_size") == 1


def test_bench_workers_resolve_the_submission_and_a_crash_fails_one_trial(targets, tmp_path):
    store = tmp_path / "s.db"
    args = ["bench", "-w", "digits_cnn", "-a", f"algoperf:{HERE / 'raises_above.py'}",
            "--tuning-search-space", HERE / "raises_points.json", "--trials", 2, "--studies", 1,
            "--eval-every-steps", 5, "--max-steps", 10, "--targets", targets, "--jobs", 2,
            "--quiet", "--store", store]  # fmt: skip
    proc = trainlab(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Store(store, readonly=True) as s:
        rows = sorted(s.trials(), key=lambda r: r["trial_index"])
        options = s.benchmark(None)["config"]["options"]
    assert [r["hyperparameters"] for r in rows] == [{"fail_at": 0}, {"fail_at": 3}]
    assert rows[0]["status"] in ("reached", "missed")
    assert rows[1]["status"] == "failed"
    assert "deliberate failure at step 3" in rows[1]["error"]
    assert options["algorithms"][0].endswith(f"?space={(HERE / 'raises_points.json').resolve()}")
    again = trainlab(*args, cwd=tmp_path)  # the same command finds the same benchmark
    assert again.returncode == 0 and "benchmark 1 (" in again.stdout
