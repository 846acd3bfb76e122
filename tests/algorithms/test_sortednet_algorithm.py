"""The ``sortednet`` algorithm: a real step-mode trial evaluates the full model and records the
width-0.5 sub-model as its compact model; the update trains the main model plus the sampled
sub-models and reports the main model's loss; unsupported models are refused before training."""

import copy

import torch

from trainlab.bench.runner import run_trial
from trainlab.cli import main
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import TrainlabError


def test_a_trial_evaluates_the_full_model_and_records_the_compact_one():
    workload = get_workload("mnist1d_cnn")
    result = run_trial(workload, get_algorithm("sortednet"), {}, 0, eval_every_steps=10,
                       max_steps=20, count_flops=False, calibrate=False)  # fmt: skip
    assert result.status in ("reached", "missed") and result.steps == 20
    cost = result.model_cost
    # the evaluated model is the workload's (32 channels): 9610 parameters
    assert cost["params"] == 9610 == sum(p.numel() for p in workload.init_model(0).parameters())
    compact = cost["compact"]
    # width 0.5: conv 1->16 (k5), 16->16 (k3) twice, head 160->10
    assert compact["params"] == (16 * 5 + 16) + 2 * (16 * 16 * 3 + 16) + (160 * 10 + 10)
    assert compact["flops_per_example"] < 0.4 * cost["flops_per_example"]
    assert 0.0 <= compact["metrics"]["accuracy"] <= 1.0 and compact["inference_speedup"] > 0


def test_the_update_trains_sub_models_and_reports_the_main_loss():
    workload = get_workload("mnist1d_mlp")
    algorithm = get_algorithm("sortednet")
    hp = algorithm.search_space.validate({"sortednet_n_sub": 2})
    model = workload.init_model(0)
    state = algorithm.init(workload, model, hp, seed=0)
    batch = next(workload.batches(32, seed=0))
    before = copy.deepcopy(model)
    with torch.no_grad():
        expected = float(workload.mean_loss(before, batch))
    draws = torch.Generator().manual_seed(0)
    draws.set_state(state.generator.get_state())
    subs = state.sortednet.sample(draws)  # what the update will draw
    assert len(subs) == 2 and all(s.width < 1.0 for s in subs)
    loss = algorithm.update(state, batch, 0)
    assert abs(float(loss) - expected) < 1e-6  # the main model's loss, not the sum
    # hidden units past the widest sampled width got gradient only from the main model, the
    # ones inside from both: the sum's gradient is not the main model's alone
    main_only = copy.deepcopy(before)
    workload.mean_loss(main_only, batch).backward()
    assert not torch.allclose(model[0].weight.grad, main_only[0].weight.grad)
    widest = max(s.width for s in subs)
    k = round(widest * 256)
    if k < 256:
        assert torch.allclose(model[0].weight.grad[k:], main_only[0].weight.grad[k:], atol=1e-7)


def test_an_unsupported_model_is_refused_before_training(capsys, tmp_path):
    try:
        get_algorithm("sortednet").check_workload(get_workload("forecast_gru"))
    except TrainlabError as exc:
        assert str(exc) == "sortednet cannot nest the width of module rnn (GRU)"
    else:
        raise AssertionError("forecast_gru was accepted")
    code = main(["run", "-w", "forecast_gru", "-a", "sortednet", "--max-steps", "2",
                 "--eval-every-steps", "1", "--store", str(tmp_path / "s.db")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("trainlab: error: sortednet cannot nest")
    assert not (tmp_path / "s.db").exists() or "error" in err


def test_the_sampled_mode_trains_only_the_drawn_sub_models():
    workload = get_workload("mnist1d_mlp")
    algorithm = get_algorithm("sortednet")
    hp = algorithm.search_space.validate({"sortednet_main": "sampled", "sortednet_n_sub": 2})
    model = workload.init_model(0)
    state = algorithm.init(workload, model, hp, seed=0)
    batch = next(workload.batches(32, seed=0))
    draws = torch.Generator()
    draws.set_state(state.generator.get_state())
    subs = state.sortednet.sample(draws)
    with torch.no_grad():
        expected = [float(workload.mean_loss(state.sortednet.submodel(s), batch)) for s in subs]
    loss = algorithm.update(state, batch, 0)
    assert abs(float(loss) - sum(expected) / 2) < 1e-6  # the mean of the drawn losses
