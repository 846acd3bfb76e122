"""The growth algorithms: the schedule, the optimizer state carried exactly through a growth,
the evaluated model's architecture at every evaluation, and bad schedules refused before
training (one line, exit 2 from the command line)."""

import pytest
import torch

from trainlab.algorithms.growth import growth_steps
from trainlab.cli import main
from trainlab.errors import HyperparameterError, TrainlabError
from trainlab.registry import get_algorithm, get_workload


def _arch(model):
    return str(model), {k: v.shape for k, v in model.state_dict().items()}


def test_growth_steps_spread_the_stages_up_to_grow_at():
    assert growth_steps(100, 0.25, 1) == [25]
    assert growth_steps(100, 0.3, 3) == [10, 20, 30]
    assert growth_steps(4, 0.1, 3) == [1, 2, 3]  # never two growths before one update


def test_a_growth_that_changes_nothing_leaves_the_baselines_trajectory_bitwise():
    """start_width = start_depth = 1: the optimizer is rebuilt at the growth step with its
    state and learning rate carried over, so the run is exactly the nadamw baseline's."""
    w = get_workload("mnist1d_mlp")
    weights = []
    for name, hp in [("nadamw", {}), ("grow_net2net", {"start_width": 1.0, "start_depth": 1.0})]:
        algo = get_algorithm(name)
        hp = algo.search_space.validate(hp)
        state = algo.init(w, w.init_model(0), hp, seed=0)
        stream = w.batches(32, 0)
        for step in range(12):
            if name != "nadamw" and step == 4:
                state.schedule = [4]  # grow before update 4
            algo.update(state, next(stream), step)
        weights.append([p.detach().clone() for p in state.model.parameters()])
    assert state.grown == 1
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


@pytest.mark.parametrize("workload", ["mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt"])
def test_net2net_evaluates_the_workloads_architecture_before_and_after_growth(workload):
    w = get_workload(workload)
    algo = get_algorithm("grow_net2net")
    hp = algo.search_space.validate({"grow_at": 0.5})
    full = w.init_model(0)
    state = algo.init(w, w.init_model(0), hp, seed=0)
    assert sum(p.numel() for p in state.model.parameters()) < sum(
        p.numel() for p in full.parameters()
    )
    stream = w.batches(16, 0)
    total = algo.total_steps(w, hp)
    batch = next(stream)
    algo.update(state, batch, 0)
    small_out = w.forward(state.model.eval(), batch)
    evaluated = algo.prepare_for_eval(state)
    assert _arch(evaluated) == _arch(full)
    with torch.no_grad():  # the small model's function in the full architecture
        assert torch.allclose(w.forward(evaluated.eval(), batch), small_out, atol=1e-5)
    assert algo.prepare_for_eval(state) is evaluated  # reused until the next update
    algo.update(state, next(stream), state.schedule[0])  # grows first
    assert state.grown == 1 and _arch(state.model) == _arch(full)
    assert algo.prepare_for_eval(state) is state.model
    assert state.scheduler.last_epoch == 2 and total > 2


@pytest.mark.filterwarnings("ignore::trainlab.errors.OutOfRangeWarning")
@pytest.mark.parametrize(
    "hp, message",
    [
        ({"grow_at": 1.0}, "before the end of the budget"),
        ({"grow_at": 0.6, "horizon": 2.0}, "before the end of the budget"),
        ({"start_width": 1.5}, "beyond the workload's model"),
        ({"start_depth": 1.2}, "beyond the workload's model"),
    ],
)
def test_a_schedule_past_the_model_or_the_budget_is_refused_even_out_of_range(hp, message):
    space = get_algorithm("grow_net2net").search_space
    with pytest.raises(HyperparameterError, match=message):
        space.validate(hp, allow_out_of_range=True)


def test_the_cli_refuses_a_growth_after_the_budget_before_training(cli_run):
    code, err = cli_run("--set", "grow_at=1.5")
    assert code == 2 and err.count("\n") == 1 and err.startswith("trainlab: error:")
    assert "grow_at" in err


def test_a_model_that_cannot_grow_is_refused_before_training():
    with pytest.raises(TrainlabError, match="cannot grow forecast_gru"):
        get_algorithm("grow_net2net").check_workload(get_workload("forecast_gru"))


@pytest.fixture
def cli_run(capsys, tmp_path):
    def call(*extra):
        args = ["run", "-w", "mnist1d_mlp", "-a", "grow_net2net", "--eval-every-steps", "5",
                "--max-steps", "10", "--quiet", "--store", str(tmp_path / "s.db"),
                *extra]  # fmt: skip
        code = main(args)
        return code, capsys.readouterr().err

    return call


@pytest.mark.parametrize("workload", ["mnist1d_mlp", "digits_cnn"])
def test_mixture_evaluates_the_workloads_architecture_before_and_after_growth(workload):
    w = get_workload(workload)
    algo = get_algorithm("grow_mixture")
    hp = algo.search_space.validate({"grow_at": 0.5})
    full = w.init_model(0)
    state = algo.init(w, w.init_model(0), hp, seed=0)
    stream = w.batches(16, 0)
    loss = algo.update(state, next(stream), 0)
    assert len(state.model) == 2 and loss.ndim == 0  # two members, their mean loss
    assert _arch(algo.prepare_for_eval(state)) == _arch(full)
    algo.update(state, next(stream), state.schedule[0])  # grows first
    evaluated = algo.prepare_for_eval(state)
    assert state.grown == 1 and _arch(evaluated) == _arch(full)
    batch = next(stream)
    with torch.no_grad():  # the plain copy computes what the template-generated model does
        assert torch.allclose(
            w.forward(evaluated.eval(), batch), w.forward(state.model.eval(), batch), atol=1e-5
        )


def test_mixture_refuses_a_gpt():
    with pytest.raises(TrainlabError, match="grow_mixture cannot grow charlm_gpt"):
        get_algorithm("grow_mixture").check_workload(get_workload("charlm_gpt"))


def test_stages_grow_in_equal_steps_to_the_workloads_width():
    w = get_workload("mnist1d_mlp")
    algo = get_algorithm("grow_net2net")
    hp = algo.search_space.validate({"start_width": 0.5, "start_depth": 1.0, "stages": 2})
    state = algo.init(w, w.init_model(0), hp, seed=0)
    stream = w.batches(16, 0)
    widths = []
    for step in state.schedule:  # 0.5 -> 0.75 -> 1 of the 256 hidden units
        algo.update(state, next(stream), step)
        widths.append([state.model[0].out_features, state.model[2].out_features])
    assert widths == [[192, 192], [256, 256]] and state.grown == 2
