"""The ``hesso`` algorithm: a step-mode trial ends group-sparse at the target sparsity with the
workload's architecture, its schedule follows the fractions, and bad input is one line (exit 2)
before any training."""

import benchfakes  # noqa: F401  (registers tiny_blobs)
import pytest
import torch

from trainlab.algorithms.hesso import HESSOAlgorithm
from trainlab.bench.runner import run_trial
from trainlab.cli import main
from trainlab.errors import HyperparameterError, TrainlabError
from trainlab.registry import get_algorithm, get_workload


class _Keep(HESSOAlgorithm):
    def prepare_for_eval(self, state):
        self.state = state
        return super().prepare_for_eval(state)


def test_trial_ends_group_sparse_with_the_workload_architecture():
    w = get_workload("tiny_blobs", "mlp")  # 16 hidden units: 16 groups
    algorithm = _Keep()
    hp = {"target_group_sparsity": 0.5, "hesso_warmup_fraction": 0.1,
          "pruning_fraction": 0.4, "pruning_periods": 2}  # fmt: skip
    result = run_trial(
        w,
        algorithm,
        hp,
        eval_every_steps=5,
        max_steps=40,
        full_curve=True,
        count_flops=False,
        calibrate=False,
    )
    assert result.status in ("reached", "missed") and result.steps == 40
    state = algorithm.state
    # schedule of step_hint = 20 steps: 2 warm-up steps, 8 pruning steps in 2 periods of 4
    assert (state.hesso.warmup_steps, state.hesso.period_steps) == (2, 4)
    assert state.hesso.group_sparsity == 0.5
    model = algorithm.prepare_for_eval(state)
    reference = w.init_model(0)
    assert [p.shape for p in model.parameters()] == [p.shape for p in reference.parameters()]
    assert int((model[0].weight.abs().sum(1) == 0).sum()) == 8


def test_defaults_and_registration():
    algorithm = get_algorithm("hesso")
    defaults = algorithm.search_space.defaults()
    assert defaults["target_group_sparsity"] == 0.5 and defaults["pruning_periods"] == 5
    assert algorithm.search_space.validate({})["hesso_warmup_fraction"] == 0.1


@pytest.mark.parametrize(
    "hp, match",
    [
        ({"target_group_sparsity": 1.0}, "target_group_sparsity"),
        ({"hesso_warmup_fraction": 0.7, "pruning_fraction": 0.5}, "pruning ends within"),
    ],
)
@pytest.mark.filterwarnings("ignore::trainlab.errors.OutOfRangeWarning")
def test_out_of_range_values_are_refused_even_for_one_run(hp, match):
    with pytest.raises(HyperparameterError, match=match):
        get_algorithm("hesso").search_space.validate(hp, allow_out_of_range=True)


def test_pruning_ends_within_the_step_budget():
    """horizon 2 makes the schedule T = 40 steps, twice the budget of 20: the fractions apply
    to the 20 steps that run (2 warm-up, 12 pruning); a 4-step run gets one period per step."""
    w = get_workload("tiny_blobs", "mlp")
    w.max_steps, w.step_hint = 20, 20
    algorithm = get_algorithm("hesso")
    hp = algorithm.search_space.validate({"horizon": 2.0, "pruning_fraction": 0.6})
    assert algorithm.schedule(w, hp) == {
        "warmup_steps": 2, "pruning_steps": 12, "pruning_periods": 5,
    }  # fmt: skip
    w.max_steps = 4
    assert algorithm.schedule(w, hp) == {
        "warmup_steps": 0, "pruning_steps": 2, "pruning_periods": 2,
    }  # fmt: skip


def test_unprunable_model_is_refused_before_training():
    with pytest.raises(TrainlabError, match="hesso cannot prune tiny_blobs.*no prunable group"):
        get_algorithm("hesso").check_workload(get_workload("tiny_blobs"))


@pytest.mark.parametrize(
    "args, match",
    [
        (["-w", "tiny_blobs", "-a", "hesso"], "hesso cannot prune tiny_blobs"),
        (["-w", "tiny_blobs:mlp", "-a", "hesso", "--set", "target_group_sparsity=1"],
         "target_group_sparsity must be in"),
    ],
)  # fmt: skip
def test_cli_bad_input_is_one_line(tmp_path, capsys, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    code = main(["run", *args, "--store", str(tmp_path / "s.db")])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("trainlab: error: ") and len(err.splitlines()) == 1
    assert match in err
    assert not (tmp_path / "s.db").exists()


def test_partition_is_found_once_per_architecture():
    algorithm = get_algorithm("hesso")
    w = get_workload("tiny_blobs", "mlp")
    algorithm.check_workload(w)
    model = w.init_model(3)
    with torch.no_grad():
        state = algorithm.init(w, model, algorithm.search_space.validate({}), 3)
    assert state.hesso.partition is next(iter(algorithm._partitions.values()))
