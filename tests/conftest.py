"""Tests run on the workloads' class values, not on ``targets.json``.

The class values are bars that each workload's baseline reaches with its defaults; the method
tests ask that of every algorithm. The committed tuned targets are checked on their own, in
``tests/workloads/test_committed_targets.py``, which reads the file explicitly.
"""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def class_targets():
    # session scope: set before any module-scoped fixture builds a workload; subprocesses and
    # spawned benchmark workers inherit it
    previous = os.environ.get("TRAINLAB_TARGETS")
    os.environ["TRAINLAB_TARGETS"] = "off"
    yield
    if previous is None:
        os.environ.pop("TRAINLAB_TARGETS", None)
    else:
        os.environ["TRAINLAB_TARGETS"] = previous
