"""The data-efficiency algorithms: what they select on planted data, that their extra work is on
the timed clock (exactly, with a clock that counts work), and, marked slow, that each reaches
a default workload's target in step mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from trainlab.bench.runner import run_trial
from trainlab.methods.one_pass import RepeatedExampleError
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import Batch, Target, TrainlabError
from trainlab.workloads.base import ClassificationWorkload, Splits, seeded_model

ALGORITHMS = (
    "data_diet_el2n",
    "data_diet_grand",
    "hard_samples",
    "cyclical_curriculum",
    "useful",
    "one_pass",
    "pskd",
    "ensemble_kd",
    "ema",
    "swa",
)
N_TRAIN, FLIPPED = 600, 30  # the first FLIPPED training labels are wrong


def _blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(2, (n,), generator=gen)
    x = torch.randn(n, 5, generator=gen) * 0.7
    x[:, 0] += 1.5 * (2 * y - 1).float()
    return x, y


class Blobs(ClassificationWorkload):
    """Two Gaussian classes in 5-D; training labels 0..FLIPPED-1 flipped (planted noise)."""

    name = "blobs"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 30.0
    eval_period = 1.0
    step_hint = 200
    eval_every_steps = 50
    num_classes = 2
    generative = True

    def __init__(self, batchnorm: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        x, y = _blobs(N_TRAIN + 400, g)
        y[:FLIPPED] = 1 - y[:FLIPPED]
        a, b = N_TRAIN, N_TRAIN + 200
        self.splits = Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])
        self.batchnorm = batchnorm

    def init_model(self, seed: int) -> nn.Module:
        def build() -> nn.Module:
            norm = [nn.BatchNorm1d(16)] if self.batchnorm else []
            return nn.Sequential(nn.Linear(5, 16), *norm, nn.ReLU(), nn.Linear(16, 2))

        return seeded_model(seed, build, self.device)

    def fresh_batches(self, batch_size: int, seed: int):
        g = torch.Generator().manual_seed(10_000 + seed)
        while True:
            x, y = _blobs(batch_size, g)
            yield Batch(x, y, torch.full((batch_size,), -1))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny models run many times faster than with two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _init(name: str, workload, hp=None, seed=0):
    algo = get_algorithm(name)
    hp = algo.search_space.validate(hp or {})
    model = workload.init_model(seed)
    return algo, algo.init(workload, model, hp, seed)


def _flipped_count(indices: torch.Tensor) -> int:
    return int((indices.unique() < FLIPPED).sum())


# --------------------------------------------------------------------------------------------
# registration


def test_all_registered_on_nadamw_cosine_with_their_extra_hyperparameters():
    base = set(get_algorithm("nadamw").search_space.names)
    for name in ALGORITHMS:
        algo = get_algorithm(name)
        assert algo.name == name
        names = set(algo.search_space.names)
        assert base - {"label_smoothing"} <= names
        assert not algo.self_tuning
    assert {"diet_keep_fraction", "diet_offset_fraction", "diet_runs"} <= set(
        get_algorithm("data_diet_grand").search_space.names
    )
    assert "hard_delta" in get_algorithm("hard_samples").search_space.names
    assert "label_smoothing" not in get_algorithm("pskd").search_space.names


def test_each_method_algorithm_lives_in_its_own_module():
    modules = {"data_diet_el2n": "data_diet", "data_diet_grand": "data_diet"}
    for name in ALGORITHMS[:8]:
        module = type(get_algorithm(name)).__module__
        assert module == f"trainlab.algorithms.{modules.get(name, name)}", (name, module)


# --------------------------------------------------------------------------------------------
# what each method selects, on planted mislabeled examples


@pytest.mark.parametrize("name", ["data_diet_el2n", "data_diet_grand"])
def test_data_diet_ranks_mislabeled_first_and_offset_drops_them(name):
    w = Blobs()
    hp = {"diet_runs": 2, "diet_score_fraction": 0.25, "diet_keep_fraction": FLIPPED / N_TRAIN}
    _, state = _init(name, w, hp)
    assert len(state.keep) == FLIPPED
    assert _flipped_count(state.keep) >= 0.8 * FLIPPED
    hp.update(diet_keep_fraction=0.5, diet_offset_fraction=FLIPPED / N_TRAIN)
    algo, state = _init(name, w, hp)
    assert _flipped_count(state.keep) <= 0.2 * FLIPPED
    batch = next(algo.select_data(state, w.batches(32, 0)))
    assert set(batch.indices.tolist()) <= set(state.keep.tolist())


def test_hard_samples_trains_on_the_hardest_batch_of_each_pool():
    w = Blobs()
    algo, state = _init("hard_samples", w, {"hard_pool": 4, "hard_delta": 1})
    clean = torch.arange(FLIPPED, N_TRAIN)
    pools = []
    for p in range(3):  # every pool: three clean batches and the all-mislabeled one
        hard = w.get_examples(torch.arange(FLIPPED))
        pools += [w.get_examples(clean[40 * (3 * p + i) : 40 * (3 * p + i + 1)]) for i in range(3)]
        pools.insert(4 * p + p % 4, hard)
    for _ in range(30):  # make the clean examples easy for the model
        algo.update(state, w.get_examples(clean[torch.randperm(len(clean))[:64]]), 0)
    chosen = list(algo.select_data(state, iter(pools)))
    assert len(chosen) == 3
    assert all(b.indices.max() < FLIPPED for b in chosen)


def test_cyclical_curriculum_starts_easy_and_cycles_to_full_data():
    w = Blobs()
    hp = {"ccl_start_fraction": 0.25, "ccl_multiplier": 0.5, "ccl_score_fraction": 0.25,
          "batch_size": 32}  # fmt: skip
    algo, state = _init("cyclical_curriculum", w, hp)
    difficulty = state.difficulty
    assert difficulty[:FLIPPED].mean() > 3 * difficulty[FLIPPED:].mean()
    stream = algo.select_data(state, w.batches(32, 0))
    first_epoch = [next(stream) for _ in range(150 // 32)]
    seen = torch.cat([b.indices for b in first_epoch])
    assert _flipped_count(seen) <= 2
    ccl = state.curriculum
    assert [ccl.fraction(e) * N_TRAIN for e in range(4)] == [150, 300, 600, 300]
    batches_per_epoch = [len(first_epoch), 0, 0, 0, 0]
    for _ in range(40):
        next(stream)
        batches_per_epoch[ccl.epoch] += 1
    assert batches_per_epoch == [150 // 32, 300 // 32, 600 // 32, 300 // 32, 4]


def test_useful_upsamples_the_late_learned_cluster():
    w = Blobs()
    algo, state = _init("useful", w, {"useful_early_fraction": 0.25, "useful_upsample": 2})
    slow = state.slow
    assert int(slow[:FLIPPED].sum()) >= 0.9 * FLIPPED
    assert int(slow.sum()) < N_TRAIN / 2
    counts = torch.bincount(state.indices, minlength=N_TRAIN)
    assert torch.equal(counts, 1 + slow.long())
    # training restarts from the initial weights: the trained model is still at its init
    fresh = w.init_model(0)
    for p, q in zip(state.model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(p, q)


def test_one_pass_uses_fresh_examples_and_refuses_fixed_datasets():
    w = Blobs()
    algo, state = _init("one_pass", w)
    batch = next(algo.select_data(state, w.batches(128, 0)))
    assert (batch.indices == -1).all()
    w.generative = False
    # refused before anything runs or is stored, not a failed trial
    with pytest.raises(TrainlabError, match="generates fresh examples"):
        run_trial(w, get_algorithm("one_pass"), eval_every_steps=10, max_steps=10)


def test_pskd_first_step_is_plain_cross_entropy_then_uses_past_predictions():
    w = Blobs()
    algo, state = _init("pskd", w, {"pskd_alpha_T": 0.8})
    batch = w.get_examples(torch.arange(64))
    with torch.no_grad():
        plain = F.cross_entropy(state.model(batch.inputs), batch.targets)
    torch.testing.assert_close(algo.update(state, batch, 0), plain)
    pskd = state.pskd
    assert pskd.seen[:64].all() and not pskd.seen[64:].any()
    step = state.total_steps // 2
    soft = pskd.targets(batch.indices, batch.targets, 0.4, 2)
    onehot = F.one_hot(batch.targets, 2).float()
    torch.testing.assert_close(soft, 0.6 * onehot + 0.4 * pskd.probs[:64])
    assert torch.isfinite(algo.update(state, batch, step))


def test_one_pass_fails_when_the_generator_repeats_an_example():
    w = Blobs()
    w.fresh_batches = lambda batch_size, seed: iter([w.get_examples(torch.arange(4))] * 2)
    algo, state = _init("one_pass", w)
    stream = algo.select_data(state, w.batches(4, 0))
    next(stream)
    with pytest.raises(RepeatedExampleError):
        next(stream)


def test_pskd_reaches_alpha_T_at_the_last_update():
    w = Blobs()
    algo, state = _init("pskd", w, {"pskd_alpha_T": 0.5, "horizon": 0.25})  # 50 updates
    batch = w.get_examples(torch.arange(8))
    algo.update(state, batch, 0)  # records predictions for examples 0..7
    for _ in range(48):
        state.scheduler.step()
    seen = []
    original = state.pskd.targets
    state.pskd.targets = lambda *args: seen.append(args[2]) or original(*args)
    algo.update(state, batch, 49)
    assert seen == [pytest.approx(0.5)]


def test_pskd_and_ensemble_kd_refuse_regression():
    w = Blobs()
    w.loss_type = "mse"
    for name in ("pskd", "ensemble_kd"):
        with pytest.raises(TrainlabError):
            _init(name, w)


def test_ensemble_kd_targets_are_mean_teacher_softmax_and_labels_unused():
    w = Blobs()
    algo, state = _init("ensemble_kd", w, {"kd_teachers": 2, "kd_teacher_fraction": 0.25})
    teachers = state.teachers
    assert len(teachers) == 2
    x = w.splits.x_train[:10]
    with torch.no_grad():
        expected = (teachers[0](x).softmax(-1) + teachers[1](x).softmax(-1)) / 2
    torch.testing.assert_close(state.cache(torch.arange(10)), expected)
    batch = w.get_examples(torch.arange(64))
    relabelled = Batch(batch.inputs, 1 - batch.targets, batch.indices)
    torch.testing.assert_close(
        algo.training_loss(state, batch), algo.training_loss(state, relabelled)
    )


@pytest.mark.parametrize("name", ["ema", "swa"])
def test_averaged_model_is_a_copy_and_training_model_is_untouched(name):
    w = Blobs(batchnorm=True)
    hp = {"horizon": 0.25, "swa_start_fraction": 0.3, "swa_every": 1} if name == "swa" else {}
    algo, state = _init(name, w, hp)
    stream = w.batches(64, 0)
    for step in range(40):
        algo.update(state, next(stream), step)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    evaluated = algo.prepare_for_eval(state)
    assert evaluated is not state.model
    for k, v in state.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(
        not torch.equal(p, q)
        for p, q in zip(evaluated.parameters(), state.model.parameters(), strict=True)
    )


class WorkClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def tick(self, *args, **kwargs) -> None:
        self.t += 1.0


@pytest.fixture
def work_clock():
    clock = WorkClock()
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: clock.tick())
    yield clock
    handle.remove()


def _count_forwards(workload, clock: WorkClock, monkeypatch) -> None:
    original = type(workload).forward

    def forward(model, batch):
        clock.tick()
        return original(workload, model, batch)

    monkeypatch.setattr(workload, "forward", forward, raising=False)


def _timed(name, workload, clock, hp=None, steps=20):
    result = run_trial(
        workload, get_algorithm(name), hp, seed=0, eval_every_steps=steps, max_steps=steps,
        full_curve=True, clock=clock, measure_cost=False,
    )  # fmt: skip
    assert result.status in ("reached", "missed"), result.error
    assert result.eval_seconds == 0.0  # evaluation does no optimizer step and no forward()
    return result.timed_seconds


@pytest.mark.parametrize(
    ("name", "hp", "extra_steps"),
    [
        ("nadamw", {}, 0),
        ("data_diet_el2n", {"diet_runs": 2, "diet_score_fraction": 0.1}, 2 * 20),
        ("cyclical_curriculum", {"ccl_score_fraction": 0.1}, 20),
        ("useful", {"useful_early_fraction": 0.1}, 20),
        ("ensemble_kd", {"kd_teachers": 2, "kd_teacher_fraction": 0.25}, 2 * 50),
        ("pskd", {}, 0),
        ("ema", {}, 0),
        ("one_pass", {}, 0),
    ],
)
def test_scoring_and_teacher_training_are_on_the_timed_clock(work_clock, name, hp, extra_steps):
    # step_hint 200, horizon 1: a fraction f of the schedule is 200 f optimizer steps
    assert _timed(name, Blobs(), work_clock, hp, steps=20) == 20 + extra_steps


def test_scoring_passes_and_candidate_batches_are_timed(work_clock, monkeypatch):
    w = Blobs()
    _count_forwards(w, work_clock, monkeypatch)
    # hard samples: per update one optimizer step and one forward, plus pool/delta scoring
    hp = {"hard_pool": 3, "hard_delta": 2}
    assert _timed("hard_samples", w, work_clock, hp, steps=20) == 20 + 20 + 3 * 10
    # GraNd at initialisation: no optimizer steps, but its forward passes are timed
    base = _timed("nadamw", w, work_clock, steps=20)
    grand = _timed("data_diet_grand", w, work_clock, {"diet_runs": 2}, steps=20)
    assert base == 40 and grand >= base + 2
    # EL2N after 20 steps: 2 runs x (20 updates + 1 scoring chunk of 600 examples)
    el2n = _timed("data_diet_el2n", w, work_clock, {"diet_runs": 2, "diet_score_fraction": 0.1})
    assert el2n == 40 + 2 * (20 * 2 + 1)


def test_swa_batchnorm_recomputation_is_timed(work_clock, monkeypatch):
    w = Blobs(batchnorm=True)
    _count_forwards(w, work_clock, monkeypatch)
    hp = {"horizon": 0.25, "swa_start_fraction": 0.3, "swa_every": 1, "swa_bn_batches": 3}
    # 50 updates (step + forward each); averaging from update 15; evaluations at 25 and 50 each
    # recompute BatchNorm statistics over 3 batches in prepare_for_eval
    result = run_trial(
        w, get_algorithm("swa"), hp, eval_every_steps=25, max_steps=50, full_curve=True,
        clock=work_clock,
    )  # fmt: skip
    assert result.timed_seconds == 50 * 2 + 2 * 3


# --------------------------------------------------------------------------------------------
# end to end on a default workload (the cheapest: mnist1d_mlp), step mode

#: cheaper settings for the costly methods so the whole file stays within a few minutes
#: (MNIST-1D is data-limited for the MLP: pruning more than ~10% costs the target, see
#: benchmarks/data_methods.py)
E2E_HP = {
    "data_diet_el2n": {"diet_runs": 1, "diet_keep_fraction": 0.9},
    "data_diet_grand": {"diet_runs": 1, "diet_keep_fraction": 0.9},
    "ensemble_kd": {"kd_teachers": 1},
}


@pytest.fixture(scope="module")
def mnist1d_mlp():
    return get_workload("mnist1d_mlp")


@pytest.mark.slow
@pytest.mark.parametrize("name", ALGORITHMS)
def test_reaches_the_default_workload_target(mnist1d_mlp, name):
    result = run_trial(
        mnist1d_mlp, get_algorithm(name), E2E_HP.get(name), seed=0,
        eval_every_steps=mnist1d_mlp.eval_every_steps,
    )  # fmt: skip
    assert result.status == "reached", (result.status, result.best_metric, result.error)
