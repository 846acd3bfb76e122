"""The public API: ``trainlab.methods`` (the functional API, as ``composer.functional``) and
``trainlab.optim`` export documented names that cite their papers, and importing the methods
pulls in no benchmark or CLI code."""

import importlib
import inspect
import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trainlab
import trainlab.methods
import trainlab.optim

# Exported names that are plumbing, not a method from a paper: they need a docstring, no citation.
HELPERS = {
    "trainlab.methods": {
        "has_batchnorm",
        "Regime",
        "OneEpochPlan",
        "VmapUnsupportedError",
        "RepeatedExampleError",
        "scale_optimizer_lr",
        "evaluating",
        "soft_cross_entropy",
    },
    "trainlab.optim": {"create_optimizer", "param_groups"},
}

# A paper named: a year in parentheses ("(2017)", "(ICCV 2021)", "(arXiv:1906.06669, 2019)"),
# an arXiv identifier or link, or a "Paper:" line.
CITATION = re.compile(
    r"\((?:[^()]*\D)?(?:19|20)\d\d[a-z]?\)|arXiv:\d{4}\.\d{4,5}|arxiv\.org/abs/|^\s*Papers?:",
    re.MULTILINE,
)

EXPORTS = [(m.__name__, name) for m in (trainlab.methods, trainlab.optim) for name in m.__all__]
OPTIMIZERS = [
    name
    for name in trainlab.optim.__all__
    if isinstance(getattr(trainlab.optim, name), type)
    and issubclass(getattr(trainlab.optim, name), torch.optim.Optimizer)
]


@pytest.mark.parametrize("module", ["trainlab.methods", "trainlab.optim"])
def test_all_lists_each_name_once_and_star_import_works(module):
    names = importlib.import_module(module).__all__
    assert len(names) == len(set(names))
    namespace: dict = {}
    exec(f"from {module} import *", namespace)
    assert set(names) <= set(namespace)


def test_the_issue_example_imports():
    from trainlab.methods import EMA, SWA, recompute_batchnorm  # noqa: F401


def test_helpers_listed_here_are_exported():
    for module, names in HELPERS.items():
        assert names <= set(importlib.import_module(module).__all__), module


@pytest.mark.parametrize("module,name", EXPORTS, ids=[f"{m}.{n}" for m, n in EXPORTS])
def test_export_is_documented_and_cites_its_paper(module, name):
    obj = getattr(importlib.import_module(module), name)
    doc = obj.__doc__  # its own docstring, not one inherited from a base class
    assert doc and doc.strip(), f"{module}.{name} has no docstring"
    if name not in HELPERS[module]:
        assert CITATION.search(doc), f"{module}.{name}'s docstring names no paper"


def test_every_optimizer_class_is_exported():
    assert len(OPTIMIZERS) == 12
    assert {"create_optimizer", "param_groups"} <= set(trainlab.optim.__all__)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_help_on_an_optimizer_shows_its_update_rule(name):
    cls = getattr(trainlab.optim, name)
    doc = inspect.cleandoc(cls.__doc__)
    assert len(doc.splitlines()) > 10
    rule = [line for line in doc.splitlines() if r"\leftarrow" in line]
    assert rule, f"{name}'s docstring has no update rule"
    shown = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    for line in rule:
        assert line.strip() in shown


def test_methods_import_no_benchmark_or_cli_code():
    code = (
        "import sys, trainlab.methods\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('trainlab.')))"
    )
    # the same trainlab as this process (a worktree's src, not another installed copy)
    src = str(Path(trainlab.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    heavy = [m for m in out if m.split(".")[1] in {"bench", "cli", "algorithms", "workloads"}]
    assert "trainlab.methods" in out and not heavy, heavy
