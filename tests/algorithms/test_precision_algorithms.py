"""``ALGORITHM+bf16`` (bf16 autocast around any algorithm, float32 master weights and state) and
``adapt`` (AdaPT's per-layer fixed point): what runs in bf16, what stays float32, the composed
names, the bad inputs, and end-to-end runs that reach the class targets in step mode."""

import pytest
import torch
from fakes import gaussian_splits
from torch import nn

from trainlab.algorithms.precision import AdaPTState
from trainlab.bench.runner import run_trial
from trainlab.cli import main
from trainlab.errors import HyperparameterError, OutOfRangeWarning, TrainlabError
from trainlab.methods.precision import autocast_device_type, fixed_point_quantize
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import Target
from trainlab.workloads.base import ClassificationWorkload, seeded_model


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and spares a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Blobs(ClassificationWorkload):
    """Two Gaussian classes in 5-D; a BatchNorm MLP."""

    name = "blobs_precision"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 30.0
    eval_period = 1.0
    step_hint = 100
    eval_every_steps = 20
    num_classes = 2

    def __init__(self) -> None:
        self.splits = gaussian_splits(5)

    def init_model(self, seed: int) -> nn.Module:
        build = lambda: nn.Sequential(  # noqa: E731
            nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2)
        )
        return seeded_model(seed, build, self.device)


def _start(name, workload, hp=None, seed=0):
    algo = get_algorithm(name)
    hp = algo.search_space.validate(hp or {})
    state = algo.init(workload, workload.init_model(seed), hp, seed)
    batches = algo.select_data(state, workload.batches(algo.batch_size(workload, hp), seed))
    return algo, state, batches


def _record_linear_outputs(model, log):
    return [m.register_forward_hook(lambda m, a, out: log.append(out.dtype))
            for m in model.modules() if isinstance(m, nn.Linear)]  # fmt: skip


@pytest.mark.parametrize("name", ["nadamw+bf16", "lion+rex+bf16", "swa+bf16", "muon+bf16"])
def test_bf16_update_runs_matmuls_in_bf16_and_keeps_weights_and_state_float32(name):
    workload = Blobs()
    algo, state, batches = _start(name, workload)
    seen, in_step = [], []
    hooks = _record_linear_outputs(state.model, seen)
    state.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: in_step.append(torch.is_autocast_enabled("cpu"))
    )
    for step in range(3):
        loss = algo.update(state, next(batches), step)
    assert seen and set(seen) == {torch.bfloat16}  # the matmuls of the update ran in bf16
    assert in_step == [False, False, False]  # the optimizer step did not
    assert torch.isfinite(loss)
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of the update
    for p in state.model.parameters():
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32
    tensors = [v for s in state.optimizer.state.values() for v in s.values()
               if torch.is_tensor(v) and v.is_floating_point()]  # fmt: skip
    assert tensors and {t.dtype for t in tensors} == {torch.float32}
    seen.clear()
    metrics = workload.evaluate(algo.prepare_for_eval(state))  # evaluation stays float32
    assert set(seen) == {torch.float32} and 0.0 <= metrics["accuracy"] <= 1.0
    for h in hooks:
        h.remove()


def test_bf16_composes_with_any_name_and_keeps_its_search_space():
    for name in ["nadamw", "lion+rex", "swa", "hard_samples", "adapt"]:
        inner, wrapped = get_algorithm(name), get_algorithm(f"{name}+bf16")
        assert wrapped.name == f"{name}+bf16"
        assert wrapped.search_space.to_json() == inner.search_space.to_json()
    with pytest.raises(TrainlabError, match="already bf16"):
        get_algorithm("nadamw+bf16+bf16")
    with pytest.raises(TrainlabError, match="unknown algorithm 'nope'"):
        get_algorithm("nope+bf16")
    with pytest.raises(TrainlabError, match="unknown schedule 'nope'"):
        get_algorithm("lion+nope+bf16")


def test_bf16_data_selection_scores_in_bf16():
    workload = Blobs()
    algo, state, batches = _start("hard_samples+bf16", workload)
    seen = []
    hooks = _record_linear_outputs(state.model, seen)
    next(batches)  # scores a pool of candidate batches with the model
    assert seen and set(seen) == {torch.bfloat16}
    assert not torch.is_autocast_enabled("cpu")
    for h in hooks:
        h.remove()


def test_the_device_picks_cpu_or_cuda_autocast():
    assert autocast_device_type("cpu") == "cpu"
    assert autocast_device_type(torch.device("cuda:1")) == "cuda"
    with pytest.raises(ValueError, match="not 'meta'"):
        autocast_device_type("meta")


@pytest.mark.slow
def test_nadamw_bf16_reaches_the_class_target_in_step_mode():
    result = run_trial(get_workload("mnist1d_mlp"), get_algorithm("nadamw+bf16"), {}, seed=0,
                       eval_every_steps=50, max_steps=2000, count_flops=False)  # fmt: skip
    assert result.status == "reached", result.best_metric


# -- adapt ------------------------------------------------------------------------------------


def test_adapt_state_exposes_the_bit_history_and_evaluates_the_quantized_model():
    workload = Blobs()
    algo, state, batches = _start("adapt", workload, {"min_lookback": 5, "max_lookback": 50})
    assert isinstance(state, AdaPTState) and state.bit_history is state.adapt.bit_history
    assert state.bit_history == [(0, {"0": (8, 4), "3": (8, 4)})]
    for step in range(60):
        algo.update(state, next(batches), step)
    assert len(state.bit_history) > 1 and state.adapt.switches  # a window is 5 to 50 updates
    step, formats = state.bit_history[-1]
    assert 5 <= step <= 60 and set(formats) == {"0", "3"}
    master = state.model[0].weight.detach().clone()
    model = algo.prepare_for_eval(state)
    wl, fl = state.adapt.formats["0"].wl, state.adapt.formats["0"].fl
    assert torch.equal(model[0].weight, fixed_point_quantize(master, wl, fl))
    workload.evaluate(model)
    algo.update(state, next(batches), 60)  # back to the master weights first
    assert not state.adapt.is_quantized


def test_a_bit_width_below_2_is_refused_before_training(tmp_path, capsys):
    space = get_algorithm("adapt").search_space
    with pytest.raises(HyperparameterError, match="wl_start=1: a word length must be 2 to 32"):
        space.validate({"wl_start": 1}, allow_out_of_range=True)
    with pytest.warns(OutOfRangeWarning):  # outside the tuning range, inside the hard limits
        assert space.validate({"wl_start": 3}, allow_out_of_range=True)["wl_start"] == 3
    store = tmp_path / "runs.db"
    code = main(["run", "-w", "digits_cnn", "-a", "adapt", "--set", "wl_start=1",
                 "--store", str(store)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("trainlab: error:")
    assert "word length" in err and not store.exists()


@pytest.mark.slow
def test_adapt_reaches_the_digits_class_target_with_a_mean_word_length_below_16():
    workload = get_workload("digits_cnn")
    torch.manual_seed(0)
    algo, state, batches = _start("adapt", workload)
    reached = None
    for step in range(1, 401):
        algo.update(state, next(batches), step)
        if step % 20 == 0 and workload.target.is_met(workload.evaluate(
                algo.prepare_for_eval(state))):  # fmt: skip
            reached = step
            break
    assert reached is not None
    mean_wl = [sum(wl for wl, _ in f.values()) / len(f) for _, f in state.bit_history]
    assert max(mean_wl[1:]) < 16  # every format the run switched to
    assert state.adapt.mean_word_length() < 16


def test_adapt_trial_stores_its_bit_widths_and_modelled_speedups(tmp_path):
    """The record under ``model_cost["method"]``: the trajectory as the state had it, and the
    inference speedup of the performance model by hand, ``32 sum M / sum wl M``, with the
    forward MACs of 64 examples: Linear(5, 16) 64 x 16 x 5 = 5120, Linear(16, 2) 2048."""
    from trainlab.bench.store import Store
    from trainlab.report.cells import cost_lines

    class Unreached(Blobs):  # all 60 updates: formats switch
        target = Target("loss", 0.0, higher_is_better=False)

    with Store(tmp_path / "s.db") as store:
        r = run_trial(Unreached(), get_algorithm("adapt"), {"min_lookback": 5, "max_lookback": 50},
                      eval_every_steps=20, max_steps=60, count_flops=False, calibrate=False,
                      store=store)  # fmt: skip
        stored = store.trial(r.trial_id)["model_cost"]["method"]
    assert r.status in ("reached", "missed"), r.error
    rec = r.model_cost["method"]
    assert stored == rec  # JSON: lists and nulls
    assert rec["name"] == "adapt" and rec["layers"] == ["0", "3"] and rec["updates"] == 60
    assert rec["steps"][0] == 0 and rec["steps"] == sorted(set(rec["steps"]))
    assert len(rec["steps"]) == len(rec["weights"]) == len(rec["gradients"]) > 1
    assert rec["weights"][0] == [[8, 4], [8, 4]] and rec["gradients"][0] == [[8, None]] * 2
    for w, g in zip(rec["weights"][1:], rec["gradients"][1:], strict=True):
        assert [x[0] for x in w] == [x[0] for x in g]  # gradients: the layer's word length
        assert all(isinstance(x[1], int) for x in g)  # and that step's dynamic fraction
    (wl0, _), (wl1, _) = rec["weights"][-1]
    assert rec["modelled_inference_speedup"] == pytest.approx(
        32 * (5120 + 2048) / (wl0 * 5120 + wl1 * 2048))
    assert rec["mean_bits"] == (wl0 + wl1) / 2
    assert (rec["paper_training_speedup"], rec["paper_inference_speedup"]) == (1.27, 2.33)
    line = cost_lines(r.model_cost)[-1]
    assert f"AdaPT: mean bit-width {(wl0 + wl1) / 2:.2f} at the end" in line
    assert "(paper: 1.27x, 2.33x)" in line and "not a CPU speedup" in line
