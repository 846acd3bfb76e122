"""Tests run on the workloads' class values, not on ``targets.json``.

The class values are bars that each workload's baseline reaches with its defaults; the method
tests ask that of every algorithm. The committed tuned targets are checked on their own, in
``tests/workloads/test_committed_targets.py``, which reads the file explicitly.
"""

import pytest


@pytest.fixture(autouse=True)
def class_targets(monkeypatch):
    monkeypatch.setenv("TRAINLAB_TARGETS", "off")
