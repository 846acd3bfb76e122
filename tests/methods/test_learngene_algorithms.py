"""The registered ``tleg`` and ``sws`` algorithms: ancestor, auxiliary and expansion inside
``init``, the workload's model initialised from the learngene; bad inputs refused up front."""

import pytest
import torch

from trainlab.algorithms.learngene import SWS, TLEG
from trainlab.bench.runner import run_trial
from trainlab.cli import main
from trainlab.methods.learngene import LearngeneError, sws
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import TrainlabError

# the small fractions and the bad depths lie outside the tuning ranges on purpose
pytestmark = pytest.mark.filterwarnings("ignore::trainlab.errors.OutOfRangeWarning")

SMALL = {"lg_ancestor_fraction": 0.02, "lg_aux_fraction": 0.02}  # below the tuning range


class Recording(SWS):
    def initialize(self, model, auxiliary):
        self.auxiliary_model = auxiliary
        super().initialize(model, auxiliary)


def test_sws_initialises_the_workload_model_from_the_trained_learngene():
    workload = get_workload("digits_cnn")
    alg = Recording()
    hp = alg.search_space.validate(SMALL, allow_out_of_range=True)
    model = workload.init_model(0)
    alg.init(workload, model, hp, seed=0)
    aux = alg.auxiliary_model
    gene = sws.find_stages(aux.features)[1].repeats[0][0]  # stage 2's shared conv
    assert [s.depth for s in sws.find_stages(aux.features)] == [3, 3]
    assert torch.equal(model.features[10].weight, aux.features[gene].weight)
    assert not torch.equal(model.features[10].weight, workload.init_model(0).features[10].weight)


@pytest.mark.parametrize(("name", "workload"), [("sws", "digits_cnn"), ("tleg", "charlm_gpt")])
def test_registered_learngene_algorithms_run_a_trial(name, workload):
    w = get_workload(workload)
    hp = {**SMALL, "lg_aux_fraction": 0.01} if name == "tleg" else SMALL
    if name == "tleg":
        hp = {**hp, "lg_ancestor_fraction": 0.01, "lg_ancestor_depth": 2, "lg_aux_depth": 3}
    r = run_trial(w, get_algorithm(name), hp, eval_every_steps=2, max_steps=2,
                  count_flops=False, calibrate=False, allow_out_of_range=True)  # fmt: skip
    assert r.status in ("reached", "missed") and r.steps == 2, r.error


@pytest.mark.parametrize(("alg", "workload"), [(TLEG, "digits_cnn"), (SWS, "charlm_gpt")])
def test_a_workload_without_the_structure_is_refused(alg, workload):
    a = alg()
    with pytest.raises(TrainlabError, match=a.name):
        a.check_workload(get_workload(workload))


@pytest.mark.parametrize(
    ("alg", "hp", "message"),
    [(SWS, {"lg_stage_depth": 1}, "no shared layer"), (TLEG, {"lg_aux_depth": 0}, "depth 0")],
)
def test_a_learngene_that_cannot_produce_the_model_fails_before_training(alg, hp, message):
    a = alg()
    w = get_workload("digits_cnn" if alg is SWS else "charlm_gpt")
    hp = a.search_space.validate({**SMALL, **hp}, allow_out_of_range=True)
    with pytest.raises(LearngeneError, match=message):
        a.check_hyperparameters(w, hp)


@pytest.mark.parametrize(
    "argv",
    [
        ["-w", "digits_cnn", "-a", "tleg"],
        ["-w", "charlm_gpt", "-a", "sws"],
    ],
)
def test_cli_bad_learngene_input_is_one_line_and_exit_2(argv, tmp_path, capsys):
    code = main(["run", *argv, "--store", str(tmp_path / "s.db")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("trainlab: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()
