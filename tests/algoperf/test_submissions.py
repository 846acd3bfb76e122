"""Submissions through the loader, in this process: the same curve as the built-in algorithm,
the hooks called as AlgoPerf's runner calls them, v0.5 files, and the contract checks."""

import json
from pathlib import Path

import pytest
import torch

from trainlab.algoperf.algorithm import SubmissionAlgorithm, SubmissionWarning, module_for
from trainlab.algoperf.loader import SubmissionError, accepts
from trainlab.algoperf.search_space import read_hparams, read_search_space
from trainlab.bench.runner import run_trial
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import EvalRecord

HERE = Path(__file__).parent / "submissions"
pytestmark = pytest.mark.filterwarnings("ignore::trainlab.algoperf.algorithm.SubmissionWarning")
FAST = dict(count_flops=False, calibrate=False, full_curve=True)


def submission(file, space=None, hparams=None):
    path = (HERE / file).resolve()
    points = read_search_space(space) if space else read_hparams(hparams) if hparams else None
    return SubmissionAlgorithm(path, f"algoperf:{path}", points)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_trainlab_submission_gives_the_builtin_nadamw_curve(tmp_path):
    builtin = get_algorithm("nadamw")
    hp = builtin.search_space.validate({"learning_rate": 4e-3})
    point = {k: v for k, v in hp.items() if k != "batch_size"}
    (tmp_path / "hp.json").write_text(json.dumps(point))
    algo = submission("trainlab_nadamw.py", hparams=tmp_path / "hp.json")
    workload = get_workload("digits_cnn")
    with pytest.warns(SubmissionWarning, match="batch_size_hint 128"):
        ours = run_trial(workload, algo, None, 3, eval_every_steps=10, max_steps=30, **FAST)
    theirs = run_trial(workload, builtin, hp, 3, eval_every_steps=10, max_steps=30, **FAST)
    assert ours.status == theirs.status and ours.steps == 30
    for a, b in zip(ours.evals, theirs.evals, strict=True):
        assert a.step == b.step
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], rel=1e-4)
        assert a.lr == pytest.approx(b.lr)


def test_data_selection_and_prepare_for_eval_run_as_the_runner_calls_them(tmp_path):
    (tmp_path / "hp.json").write_text(json.dumps({"learning_rate": 3e-3, "ema_decay": 0.9}))
    algo = submission("hard_half_ema.py", hparams=tmp_path / "hp.json")
    calls = module_for(algo.path).CALLS
    workload = get_workload("digits_cnn")
    algo.check_workload(workload)  # the dry run: one draw, one preparation
    before = dict(calls)
    result = run_trial(workload, algo, None, 0, eval_every_steps=10, max_steps=30, **FAST)
    assert result.status in ("reached", "missed") and result.error is None
    assert calls["data_selection"] - before["data_selection"] == 30  # one draw per step
    assert calls["prepare_for_eval"] - before["prepare_for_eval"] == 3  # one per evaluation


def test_v05_submission_without_prepare_for_eval():
    algo = submission("v05_adamw.py", space=HERE / "nadamw_space.json")
    assert algo.batch_size(get_workload("digits_cnn"), {}) == 64  # its own table
    assert not accepts(algo.module.update_params, "train_state")
    result = run_trial(get_workload("charlm_gpt"), algo,
                       {"learning_rate": 3e-3, "weight_decay": 1e-3, "one_minus_beta1": 0.1,
                        "beta2": 0.999, "warmup_factor": 0.05},
                       0, eval_every_steps=5, max_steps=10, **FAST)  # fmt: skip
    assert result.error is None and result.evals[-1].metrics["bits_per_char"] < 6.0


def test_eval_results_and_train_state_reach_the_submission():
    algo = submission("raises_above.py", space=HERE / "raises_points.json")
    workload = get_workload("digits_cnn")
    state = algo.init(workload, workload.init_model(0), {"fail_at": 0}, 0)
    assert state.hyperparameters.fail_at == 0 and not hasattr(state.hyperparameters, "dropout_rate")
    algo.observe_evaluation(state, EvalRecord(10, 1.5, {"error_rate": 0.01}))
    assert state.eval_results == [(10, {"error_rate": 0.01, "accumulated_submission_time": 1.5})]
    assert state.train_state["validation_goal_reached"]  # 0.01 <= the class target 0.02


def test_a_self_tuning_submission_gets_no_hyperparameters():
    algo = submission("raises_above.py")
    assert algo.self_tuning
    workload = get_workload("digits_cnn")
    assert algo.init(workload, workload.init_model(0), {}, 0).hyperparameters is None


def test_an_exception_in_update_params_fails_the_trial_not_the_check():
    algo = submission("raises_above.py", space=HERE / "raises_points.json")
    workload = get_workload("digits_cnn")
    algo.check_workload(workload)  # point 0 never raises
    result = run_trial(workload, algo, {"fail_at": 3}, 0, eval_every_steps=5, max_steps=10, **FAST)
    assert result.status == "failed" and "deliberate failure at step 3" in result.error


def test_contract_breaches_are_refused_before_training():
    algo = get_algorithm(f"algoperf:{HERE / 'bad_return.py'}")
    with pytest.raises(SubmissionError, match="update_params returned a tuple of length 2"):
        algo.check_workload(get_workload("digits_cnn"))


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("bad_missing.py", r"bad_missing.py: no function update_params\(\)"),
        ("bad_syntax.py", "bad_syntax.py: syntax error at line 3"),
        ("bad_import.py", "bad_import.py: imports 'trainlab_no_such_module', which is not "
                          "installed"),
        ("no_such_file.py", "no_such_file.py: no such file"),
    ],
)
def test_bad_files_are_one_line_errors(file, message):
    with pytest.raises(SubmissionError, match=message) as info:
        get_algorithm(f"algoperf:{HERE / file}")
    assert "\n" not in str(info.value)


def test_the_runner_hands_every_evaluation_back():
    seen = []

    class Watching(type(get_algorithm("nadamw"))):
        def observe_evaluation(self, state, record):
            seen.append((record.step, set(record.metrics)))

    builtin = get_algorithm("nadamw")
    algo = Watching(builtin.optimizer_part, builtin.schedule_part, name="watching")
    result = run_trial(get_workload("digits_cnn"), algo, {}, 0, eval_every_steps=4, max_steps=8,
                       **FAST)  # fmt: skip
    assert [s for s, _ in seen] == [e.step for e in result.evals] == [4, 8]
    assert seen[0][1] == set(result.evals[0].metrics)


COMPLETE = '''
import torch
from algoperf import spec


def get_batch_size(workload_name):
    return 16


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"optimizer": torch.optim.SGD(model_params.parameters(), lr=0.1)}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results,
                  global_step, rng, train_state):
    assert train_state["training_complete"] is False
    if global_step == 2:
        raise spec.TrainingCompleteError
    model = current_param_container
    optimizer_state["optimizer"].zero_grad()
    logits, model_state = workload.model_fn(model, batch, model_state,
                                            spec.ForwardPassMode.TRAIN, rng, True)
    out = workload.loss_fn(batch["targets"], logits)
    (out["summed"] / out["n_valid_examples"]).backward()
    optimizer_state["optimizer"].step()
    return optimizer_state, model, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container,
                   model_state, hyperparameters, global_step, rng):
    return next(input_queue)
'''


def test_training_complete_error_ends_training(tmp_path):
    path = tmp_path / "complete.py"
    path.write_text(COMPLETE)
    algo = SubmissionAlgorithm(path, f"algoperf:{path}")
    workload = get_workload("digits_cnn")
    model = workload.init_model(0)
    state = algo.init(workload, model, {}, 0)
    assert accepts(algo.module.update_params, "train_state")
    batches = algo.select_data(state, workload.batches(16, 0))
    for step in range(2):
        algo.update(state, next(batches), step)
    frozen = [p.detach().clone() for p in model.parameters()]
    for step in range(2, 5):  # step 2 raises; later steps do nothing
        algo.update(state, next(batches), step)
    assert state.train_state["training_complete"]
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.parameters(), strict=True))


def test_run_options_attach_the_space_to_the_name(tmp_path):
    from trainlab.cli.run import submission_name

    space = tmp_path / "space.json"
    space.write_text('{"learning_rate": {"min": 0.001, "max": 0.1, "scaling": "log"}}')
    name = submission_name(f"algoperf:{HERE / 'raises_above.py'}", None, space)
    algo = get_algorithm(name)
    assert algo.name == name and algo.search_space.validate({}) == {
        "learning_rate": pytest.approx(0.01)}  # the range's geometric midpoint
    assert submission_name("adamw", None, None) == "adamw"


def test_an_edited_submission_is_a_new_benchmark(tmp_path):
    """The fingerprint holds the file's contents: resuming must never mix two versions."""
    from trainlab.bench.benchmark import BenchmarkConfig, make_plan

    path = tmp_path / "sub.py"
    path.write_text((HERE / "trainlab_nadamw.py").read_text())

    def key():
        config = BenchmarkConfig(workloads=["digits_cnn"], algorithms=[f"algoperf:{path}"],
                                 n_trials=1, n_studies=1, targets="class")  # fmt: skip
        return make_plan(config).key

    first = key()
    assert key() == first
    path.write_text(path.read_text() + "\n# an edit\n")
    assert key() != first
