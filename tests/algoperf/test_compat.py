"""The stand-in ``algoperf`` modules exist while a submission is imported, and only then."""

import importlib
import sys

import pytest
import torch

from trainlab.algoperf import compat, pytorch_utils, spec


@pytest.mark.skipif(compat.installed("algoperf"), reason="the real algoperf is installed")
def test_stand_ins_exist_only_inside_the_context():
    with compat.compat_modules() as added:
        assert {"algoperf", "algoperf.spec", "algorithmic_efficiency.pytorch_utils"} <= set(added)
        from algoperf import spec as v06
        from algorithmic_efficiency import pytorch_utils as v05

        assert v06 is spec and v05 is pytorch_utils
        assert importlib.import_module("algoperf.spec").LossType is spec.LossType
    assert "algoperf" not in sys.modules and "algorithmic_efficiency.spec" not in sys.modules
    assert compat.spec_module() is spec


def test_a_module_already_imported_is_left_alone(monkeypatch):
    real = type(sys)("algoperf")
    monkeypatch.setitem(sys.modules, "algoperf", real)
    with compat.compat_modules() as added:
        assert "algoperf" not in added and sys.modules["algoperf"] is real
    assert sys.modules["algoperf"] is real


def test_pytorch_setup_reports_one_process_on_the_active_device():
    assert pytorch_utils.pytorch_setup() == (False, 0, torch.device("cpu"), 1)
    with pytorch_utils.active_device(torch.device("meta")):
        assert pytorch_utils.pytorch_setup()[2] == torch.device("meta")
    assert pytorch_utils.pytorch_setup()[2] == torch.device("cpu")


def test_spec_names_submissions_use():
    assert spec.ForwardPassMode.TRAIN != spec.ForwardPassMode.EVAL
    assert spec.ParameterType.BATCH_NORM_SCALE.value == 3  # AlgoPerf's numbering
    assert spec.ShapeTuple((2, 3)) == spec.ShapeTuple([2, 3])
    assert issubclass(spec.TrainingCompleteError, Exception)
