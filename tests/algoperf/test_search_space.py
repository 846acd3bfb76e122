"""AlgoPerf's search-space JSON: both forms, the defaults, the errors, and the trials a
benchmark plans from them (Halton points from the dict form, the list used in order)."""

import json
import math

import pytest

from trainlab.algoperf import names
from trainlab.algoperf.search_space import parse_search_space, read_hparams, read_search_space
from trainlab.bench import tuning
from trainlab.errors import TrainlabError
from trainlab.spec import SearchSpace

DICT_SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
    "warmup_factor": {"min": 0.0, "max": 0.2, "scaling": "linear"},
    "beta2": {"feasible_points": [0.999, 0.99]},
}


def test_dict_form_maps_ranges_and_feasible_points():
    space, points = parse_search_space(DICT_SPACE, "x")
    assert points is None
    lr, warmup, beta2 = space.params
    assert (lr.low, lr.high, lr.log, lr.kind) == (1e-4, 1e-2, True, "float")
    assert lr.default == pytest.approx(1e-3)  # geometric midpoint of 1e-4 and 1e-2
    assert (warmup.log, warmup.default) == (False, pytest.approx(0.1))
    assert (beta2.kind, beta2.choices, beta2.default) == ("choice", (0.999, 0.99), 0.999)


def test_list_form_keeps_the_points_in_order():
    data = [{"lr": 0.1, "wd": 0.0}, {"lr": 0.01, "wd": 0.5}, {"lr": 0.1, "wd": 0.5}]
    space, points = parse_search_space(data, "x")
    assert points == data
    assert space["lr"].choices == (0.1, 0.01, 0.1)  # the fingerprint keeps every point
    assert space.validate({}) == {"lr": 0.1, "wd": 0.0}  # the first point


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "empty"),
        ([], "non-empty"),
        ({"lr": 0.1}, "expected"),
        ({"lr": {"min": 1, "max": 0}}, "min 1 > max 0"),
        ({"lr": {"min": 0, "max": 1, "scaling": "log"}}, "min > 0"),
        ({"lr": {"min": 0, "max": 1, "scaling": "cubic"}}, "scaling"),
        ({"lr": {"min": "a", "max": 1}}, "finite numbers"),
        ({"lr": {"min": 0, "max": 1, "step": 2}}, "unknown key 'step'"),
        ({"lr": {"feasible_points": []}}, "non-empty list"),
        ({"lr": {"feasible_points": [None]}}, "not a number"),
        ({"not a name": {"feasible_points": [1]}}, "not a hyperparameter name"),
        ([{"a": 1}, {"b": 1}], "point 1 names"),
        ("lr", "expected a JSON object"),
    ],
)
def test_malformed_spaces_are_one_line_errors(data, message):
    with pytest.raises(TrainlabError, match=message) as info:
        parse_search_space(data, "--tuning-search-space f.json")
    assert "\n" not in str(info.value)


def test_files_are_read_with_their_path_in_errors(tmp_path):
    good = tmp_path / "space.json"
    good.write_text(json.dumps(DICT_SPACE))
    assert read_search_space(good).path == good.resolve()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TrainlabError, match=f"--tuning-search-space {bad}: not JSON"):
        read_search_space(bad)


def test_hparams_point_is_the_default_and_numbers_may_be_left(tmp_path):
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({"learning_rate": 0.01, "steps": 3, "opt": "adam"}))
    space = read_hparams(path).space
    assert space.validate({}) == {"learning_rate": 0.01, "steps": 3, "opt": "adam"}
    assert space["steps"].kind == "int"
    with pytest.warns(UserWarning, match="outside the tuning search space"):
        hp = space.validate({"learning_rate": 0.02}, allow_out_of_range=True)
    assert hp["learning_rate"] == 0.02


class _Fake:
    name = "algoperf:/x.py"

    def __init__(self, space: SearchSpace, points=None):
        self.search_space, self.fixed_points = space, points


def test_external_tuning_draws_halton_points_from_the_dict_form():
    space, _ = parse_search_space(DICT_SPACE, "x")
    plans = tuning.plan_algorithm(_Fake(space), "external", 4, 2, seed=7)
    assert [(p.study, p.trial_index) for p in plans] == [(s, i) for s in range(2) for i in range(4)]
    units = tuning.halton_unit_points(3, 8, 7)
    for plan, u in zip(plans, units, strict=True):
        lr = math.exp(math.log(1e-4) + u[0] * (math.log(1e-2) - math.log(1e-4)))
        assert plan.hyperparameters["learning_rate"] == pytest.approx(lr)
        assert plan.hyperparameters["warmup_factor"] == pytest.approx(0.2 * u[1])
        assert plan.hyperparameters["beta2"] == (0.999, 0.99)[int(u[2] * 2)]


def test_the_list_form_runs_point_i_as_trial_i_of_every_study():
    points = [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}]
    space, _ = parse_search_space(points, "x")
    plans = tuning.plan_algorithm(_Fake(space, points), "external", 2, 2, seed=0)
    assert [(p.study, p.trial_index, p.hyperparameters["lr"]) for p in plans] == [
        (0, 0, 0.1), (0, 1, 0.2), (1, 0, 0.1), (1, 1, 0.2)]
    assert len({p.seed for p in plans}) == 4
    with pytest.raises(TrainlabError, match="--trials 4: the search space lists only 3"):
        tuning.plan_algorithm(_Fake(space, points), "external", 4, 1, seed=0)


def test_names_carry_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = names.with_file("algoperf:sub.py", "space", tmp_path / "s.json")
    assert name == f"algoperf:{tmp_path / 'sub.py'}?space={tmp_path / 's.json'}"
    assert names.parse(name) == (tmp_path / "sub.py", "space", tmp_path / "s.json")
    with pytest.raises(TrainlabError, match="already names a space file"):
        names.with_file(name, "hparams", tmp_path / "h.json")
    with pytest.raises(TrainlabError, match="expected algoperf:PATH"):
        names.parse("algoperf:sub.py?color=red")
