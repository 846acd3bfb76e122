"""The ``algoperf`` / ``algorithmic_efficiency`` modules a submission imports.

When the real package (AlgoPerf v0.6 ``algoperf``, v0.5 ``algorithmic_efficiency``) is
installed, the submission gets it. Otherwise :func:`compat_modules` puts trainlab's
definitions (:mod:`trainlab.algoperf.spec`, :mod:`trainlab.algoperf.pytorch_utils`) in
``sys.modules`` under both names for the duration of the submission's import, and takes them
out again afterwards, so unrelated code never sees a fake ``algoperf``. A submission binds
what it imports at module level; an ``import algoperf`` inside one of its functions, run later,
finds the real package or nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any

from trainlab.algoperf import pytorch_utils, spec

#: the top-level package names of AlgoPerf v0.6 and v0.5
PACKAGES = ("algoperf", "algorithmic_efficiency")


def installed(package: str) -> bool:
    """Whether the real ``package`` can be imported (without importing it). A bare directory
    of that name on ``sys.path`` (a namespace package, e.g. a ``tests/algoperf`` folder) is
    not it: the real packages have an ``__init__.py``."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    return found is not None and found.origin not in (None, "namespace")


def spec_module() -> Any:
    """The ``spec`` module a submission compares against (``workload.loss_type ==
    spec.LossType....``): the real package's when installed, else trainlab's."""
    for package in PACKAGES:
        if installed(package):
            return importlib.import_module(f"{package}.spec")
    return spec


@contextlib.contextmanager
def compat_modules() -> Iterator[list[str]]:
    """Provide ``algoperf[.spec|.pytorch_utils]`` and the same under ``algorithmic_efficiency``
    where the real package is absent; yields the names it added, removed on exit."""
    added: dict[str, types.ModuleType] = {}
    for package in PACKAGES:
        if package in sys.modules or installed(package):
            continue
        top = types.ModuleType(package, f"trainlab's stand-in for AlgoPerf's {package}")
        top.__path__ = []  # a package: `from algoperf import spec` finds the attributes
        top.spec = spec
        top.pytorch_utils = pytorch_utils
        added[package] = top
        added[f"{package}.spec"] = spec
        added[f"{package}.pytorch_utils"] = pytorch_utils
    sys.modules.update(added)
    try:
        yield sorted(added)
    finally:
        for name, module in added.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
