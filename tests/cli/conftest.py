"""Shared by the CLI tests: a results store written by hand (no training), and a way to call
the command line in this process."""

from pathlib import Path

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest

from trainlab.bench.store import Store
from trainlab.cli import main
from trainlab.spec import EvalRecord

ALGORITHMS = ("tiny_sgd", "tiny_selftuned")


def _make_store(path: Path) -> int:
    """A finished step-mode benchmark of tiny_blobs x ALGORITHMS, two studies each; returns
    its id."""
    options = {
        "workloads": ["tiny_blobs"], "algorithms": list(ALGORITHMS), "ruleset": "external",
        "n_trials": 1, "n_studies": 2, "eval_every_steps": 5, "max_steps": 20,
    }  # fmt: skip
    with Store(path) as store:
        bid, _ = store.get_or_create_benchmark("cli-test", {"options": options})
        for a_index, algorithm in enumerate(ALGORITHMS):
            for study in range(2):
                tid = store.create_trial(
                    benchmark_id=bid, study=study, trial_index=0, workload="tiny_blobs",
                    variant="", algorithm=algorithm, mode="steps", seed=study,
                    hyperparameters={"learning_rate": 0.1} if a_index == 0 else {},
                    eval_every_steps=5, max_steps=20, target_metric="accuracy",
                    target_value=0.9, higher_is_better=1,
                )  # fmt: skip
                store.start_trial(tid)
                for k in range(1, 5):
                    store.add_evaluation(tid, EvalRecord(5 * k, 0.1 * k, {"accuracy": 0.3 * k}))
                store.finish_trial(
                    tid, status="reached", time_to_target=0.3 + 0.1 * a_index,
                    steps_to_target=15 + 5 * a_index, timed_seconds=0.4, eval_seconds=0.1,
                    wall_seconds=0.6, n_evals=4, steps=20, best_metric=0.9,
                )  # fmt: skip
    return bid


@pytest.fixture(scope="session")
def make_store():
    return _make_store


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "s.db"
    _make_store(path)
    return path


@pytest.fixture
def cli(capsys):
    """``cli(*ARGS)``: ``trainlab ARGS`` in this process -> (exit code, stdout, stderr)."""

    def call(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return call
