"""The sparse algorithms (gmp, rigl, granet, granet_sparse): each reaches its class target on a
small workload in step mode and ends at exactly the target sparsity with the workload's
architecture; bad sparsity hyperparameters are refused before training (and by the CLI with
exit code 2)."""

import benchfakes  # noqa: F401  (registers tiny_blobs)
import pytest
import torch
from fakes import gaussian_splits
from torch import nn

from trainlab.algorithms.sparse import SparseState
from trainlab.bench.runner import run_trial
from trainlab.cli import main
from trainlab.registry import get_algorithm
from trainlab.spec import HyperparameterError, Target, TrainlabError
from trainlab.workloads.base import ClassificationWorkload, seeded_model

NAMES = ("gmp", "rigl", "granet", "granet_sparse")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # small models on a shared CPU run faster on one thread than fighting over several
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Blobs(ClassificationWorkload):
    """Two Gaussian classes in 8-D (600 training examples), an 8-64-64-2 MLP."""

    name = "blobs_sparse"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 30.0
    eval_period = 1.0
    step_hint = 200
    eval_every_steps = 50
    num_classes = 2

    def __init__(self) -> None:
        self.splits = gaussian_splits(8)

    def init_model(self, seed: int) -> nn.Module:
        def build() -> nn.Module:
            return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                 nn.Linear(64, 2))  # fmt: skip

        return seeded_model(seed, build, self.device)


def _train(name: str, steps: int = 200, hp=None, seed: int = 0):
    workload, algorithm = Blobs(), get_algorithm(name)
    hp = algorithm.search_space.validate(hp or {})
    model = workload.init_model(seed)
    state = algorithm.init(workload, model, hp, seed)
    stream = algorithm.select_data(state, workload.batches(algorithm.batch_size(workload, hp), 0))
    for step in range(steps):
        algorithm.update(state, next(stream), step)
    return state, algorithm.prepare_for_eval(state)


@pytest.mark.parametrize("name", NAMES)
def test_reaches_the_class_target_in_step_mode(name):
    r = run_trial(Blobs(), get_algorithm(name), eval_every_steps=50, max_steps=200,
                  count_flops=False, calibrate=False)  # fmt: skip
    assert r.status == "reached", (r.status, r.best_metric, r.error)


@pytest.mark.parametrize("name", NAMES)
def test_ends_at_exactly_the_target_sparsity_with_the_workloads_architecture(name):
    # the pruning schedule ends at 0.5 x step_hint = update 100; RigL updates at 50 and 100
    hp = {"delta_t": 50} if name == "rigl" else {"t_end_fraction": 0.5}
    state, model = _train(name, steps=100, hp=hp)
    assert state.sparsifier.updates[-1] == 100
    assert isinstance(state, SparseState)
    masks = state.sparsifier.masks
    # every Linear weight is sparsified: 8*64 + 64*64 + 64*2 = 4736 weights
    assert masks.total == 4736
    if name == "gmp":  # per layer, the paper's default scope
        for mask in masks.masks.values():
            assert mask.numel() - int(mask.sum()) == round(0.9 * mask.numel())
    else:
        assert masks.total - masks.active == round(0.9 * 4736)
    reference = Blobs().init_model(0)
    assert type(model) is type(reference)
    assert [p.shape for p in model.parameters()] == [p.shape for p in reference.parameters()]
    for n, w in state.sparsifier.weights.items():
        assert torch.all(w[~masks.masks[n]] == 0)
        moments = [
            v for v in state.optimizer.state[w].values() if getattr(v, "shape", 0) == w.shape
        ]
        assert len(moments) == 2  # NAdamW's exp_avg and exp_avg_sq: zero where pruned
        assert all(torch.all(v[~masks.masks[n]] == 0) for v in moments)


def test_schedule_fractions_become_steps_of_the_budget():
    state, _ = _train("gmp", steps=0, hp={"t0_fraction": 0.25, "t_end_fraction": 0.5})
    g = state.sparsifier
    # of step_hint 200; delta_t 50 clamped to (100 - 50) // 10 = 5: ten pruning steps
    assert (g.t_0, g.t_end, g.delta_t) == (50, 100, 5)
    state, _ = _train("rigl", steps=0)
    assert state.sparsifier.t_end == 150  # 0.75 of 200


@pytest.mark.parametrize(
    ("name", "hp", "message"),
    [
        ("gmp", {"sparsity": 1.0}, r"sparsity=1.0 is outside \[0, 1\)"),
        ("rigl", {"sparsity": -0.1}, r"sparsity=-0.1 is outside \[0, 1\)"),
        ("granet", {"t_end_fraction": 1.2}, "would end after the step budget"),
        ("gmp", {"t0_fraction": 0.8}, "t0_fraction=0.8 must be in"),
        ("granet_sparse", {"initial_sparsity": 0.95}, "initial_sparsity=0.95 must be in"),
        ("rigl", {"delta_t": 0}, "delta_t=0 must be >= 1"),
    ],
)
def test_bad_sparsity_hyperparameters_are_refused_even_out_of_range(name, hp, message):
    space = get_algorithm(name).search_space
    with pytest.raises(HyperparameterError, match=message):
        space.validate(hp, allow_out_of_range=True)


def test_a_single_run_may_choose_another_sparsity():
    with pytest.warns(UserWarning, match="outside the tuning search space"):
        hp = get_algorithm("gmp").search_space.validate({"sparsity": 0.5}, allow_out_of_range=True)
    assert hp["sparsity"] == 0.5


def test_cli_refuses_a_bad_sparsity_before_training(tmp_path, capsys):
    store = tmp_path / "runs.db"
    args = ["run", "-w", "tiny_blobs:mlp", "-a", "rigl", "--set", "sparsity=1",
            "--eval-every-steps", "5", "--max-steps", "10", "--store", str(store)]  # fmt: skip
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("trainlab: error:") and len(err.strip().splitlines()) == 1
    assert "sparsity=1" in err and not store.exists()


def test_a_model_without_linear_or_conv_weights_is_refused_up_front():
    class NoLinear(Blobs):
        def init_model(self, seed):
            return nn.GRU(8, 2)

    with pytest.raises(TrainlabError, match="no Linear or Conv weight"):
        get_algorithm("gmp").check_workload(NoLinear())


@pytest.mark.parametrize("name", ["gmp", "granet"])
def test_a_short_run_prunes_in_at_least_ten_steps(name):
    class Short(Blobs):
        step_hint = 60  # a 60-step run: t_0 = 6, t_end = 42, delta_t 50 -> 36 // 10 = 3

    workload, algorithm = Short(), get_algorithm(name)
    hp = algorithm.search_space.validate({})
    state = algorithm.init(workload, workload.init_model(0), hp, 0)
    g = state.sparsifier
    assert (g.t_0, g.t_end, g.delta_t) == (6, 42, 3)
    assert sorted(g.schedule) == list(range(6, 43, 3))  # 13 pruning steps, not one


def _zeros(model):
    return [int((m.weight == 0).sum()) for m in model if isinstance(m, nn.Linear)]


def test_before_t_end_gmp_is_evaluated_on_a_copy_pruned_to_the_final_sparsity():
    # t_0 = 20, t_end = 140 of step_hint 200, delta_t 12: after 40 updates the masks are at
    # s_32 = 0.9 (1 - (1 - 12/120)^3) = 0.2439 per layer
    state, model = _train("gmp", steps=40)
    g = state.sparsifier
    assert g.sparsity == pytest.approx(0.2439, abs=2e-3) and model is not state.model
    sizes = [m.weight.numel() for m in model if isinstance(m, nn.Linear)]
    assert _zeros(model) == [round(0.9 * n) for n in sizes]  # per layer, GMP's scope
    for copy, live in zip(model, state.model, strict=True):
        if isinstance(copy, nn.Linear):  # the kept weights are the training model's largest
            kept = copy.weight != 0
            assert torch.equal(copy.weight[kept], live.weight[kept])
            assert live.weight[kept].abs().min() >= live.weight[~kept].abs().max()
    assert g.sparsity < 0.5  # the training model and its masks are untouched
    assert get_algorithm("gmp").prepare_for_eval(state) is model  # no update: the same copy


def test_granet_eval_copy_is_globally_pruned_and_after_t_end_the_model_itself():
    state, model = _train("granet", steps=30)
    total = sum(m.weight.numel() for m in model if isinstance(m, nn.Linear))
    assert sum(_zeros(model)) == round(0.9 * total) and model is not state.model
    state, model = _train("gmp", steps=140)  # t_end reached: the training model, at 0.9
    assert model is state.model and state.sparsifier.sparsity == pytest.approx(0.9, abs=1e-3)


def test_rigl_is_evaluated_on_its_training_model():
    state, model = _train("rigl", steps=5)
    assert model is state.model
