"""Tests run on the workloads' class values, not on ``targets.json``.

A workload built by the registry carries its class values, and ``run_trial`` without a spec
uses them: the bars that each workload's baseline reaches with its defaults, which the method
tests ask of every algorithm. Benchmarks and CLI runs in tests pass ``targets="class"``
(``--targets class``) explicitly. The committed tuned targets are checked on their own, in
``tests/workloads/test_committed_targets.py``.
"""

# a real PostgreSQL server, a fresh database per test (tests/postgres.py)
import pytest
from postgres import postgres_admin_url, postgres_server, postgres_url  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """A store location on both backends: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return request.getfixturevalue("postgres_url")
