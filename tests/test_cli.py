"""The command line: bad input gives one line and exit code 2; runs report and store results."""

import json
import subprocess
import sys

import pytest

from trainlab.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "-w", "nope", "-a", "adamw"], "unknown workload 'nope'"),
        (["run", "-w", "digits_cnn", "-a", "nope"], "unknown algorithm 'nope'"),
        (["run", "-w", "digits_cnn", "-a", "lion+onecycle"], "unknown schedule 'onecycle'"),
        (["run", "-w", "digits_cnn", "-a", "lino+cosine"], "optimizers: adamw, adan"),
        (
            ["run", "-w", "digits_cnn", "-a", "adamw", "--set", "lr=1"],
            "unknown hyperparameter 'lr'",
        ),
        (["run", "-w", "digits_cnn", "-a", "adamw", "--set", "learning_rate=nan"], "not finite"),
        (["run", "-w", "digits_cnn", "-a", "adamw", "--targets", "/no/such.json"], "no such file"),
        (
            ["run", "-w", "digits_cnn", "-a", "adamw", "--set", "learning_rate"],
            "expects name=value",
        ),
        (["run", "-w", "digits_cnn", "-a", "adamw", "--variant", "huge"], "no variant 'huge'"),
        (
            ["run", "-w", "charlm_gpt", "-a", "adamw", "--text-file", "/no/such/file"],
            "cannot read /no/such/file",
        ),
        (
            ["run", "-w", "digits_cnn", "-a", "adamw", "--text-file", __file__],
            "charlm_gpt workload only",
        ),
        (
            ["run", "-w", "digits_cnn", "-a", "adamw", "--eval-every-steps", "0"],
            "--eval-every-steps: takes N or auto",
        ),
        (["run", "-w", "digits_cnn"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, words):
    code, out, err = run_cli(
        capsys, *args, *(["--store", str(tmp_path / "s.db")] if args[0] == "run" else [])
    )
    assert code == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_show_without_store_is_an_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "show", "--store", str(tmp_path / "none.db"))
    assert code == 2 and "no results store" in err


def test_run_json_then_show(capsys, tmp_path):
    store = str(tmp_path / "s.db")
    code, out, _ = run_cli(
        capsys, "run", "-w", "mnist1d_mlp", "-a", "nadamw", "--eval-every-steps", "20",
        "--max-steps", "60", "--store", store, "--json", "--seed", "3",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    for key in ("trial_id", "workload", "algorithm", "hyperparameters", "seed", "status",
                "time_to_target", "steps_to_target", "timed_seconds", "eval_seconds",
                "wall_seconds", "n_evals", "best_metric"):  # fmt: skip
        assert key in result
    assert result["status"] == "missed" and result["time_to_target"] is None
    assert result["n_evals"] == 3 and result["seed"] == 3
    code, out, _ = run_cli(capsys, "show", "--store", store, "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [result["trial_id"]] and rows[0]["status"] == "missed"


def test_list_json(capsys):
    code, out, _ = run_cli(capsys, "list", "workloads", "--json")
    names = {w["name"] for w in json.loads(out)}
    assert {"mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru"} <= names
    code, out, _ = run_cli(capsys, "list", "algorithms", "--json")
    doc = json.loads(out)
    adamw = next(a for a in doc["algorithms"] if a["name"] == "adamw")
    lr = next(p for p in adamw["search_space"] if p["name"] == "learning_rate")
    assert lr["log"] is True and lr["low"] < lr["default"] < lr["high"]


@pytest.mark.parametrize("module", ["trainlab", "trainlab.cli"])
def test_python_dash_m_entry_point(module):
    proc = subprocess.run(
        [sys.executable, "-m", module, "run", "-w", "x", "-a", "y"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("trainlab: error: --workload: unknown workload 'x'")
    assert len(proc.stderr.splitlines()) == 1
