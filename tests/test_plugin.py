"""A third-party plugin package adds a workload and an algorithm through entry points.

The example package in ``tests/plugin_example`` (the one ``docs/architecture.md`` walks
through) is copied to a temporary directory and made visible the way ``pip install`` would,
without touching the shared environment: a ``*.dist-info`` directory with its
``entry_points.txt`` (generated from the package's ``pyproject.toml``) beside the package, and
that directory on ``PYTHONPATH``. ``importlib.metadata.entry_points`` finds dist-info
directories on ``sys.path``, so ``trainlab`` loads the plugin exactly as if it were installed.
The commands then run through the command line in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = Path(__file__).with_name("plugin_example")


def make_installed(directory: Path) -> Path:
    """Copy the example plugin into ``directory`` and write the dist-info that an install
    would; returns ``directory`` (to put on ``PYTHONPATH``)."""
    shutil.copytree(EXAMPLE / "trainlab_plugin_example", directory / "trainlab_plugin_example")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    dist = directory / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    return directory


@pytest.fixture
def plugin_env(tmp_path):
    site = make_installed(tmp_path / "site")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(site)])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def trainlab(env, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "trainlab.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_entry_points_declared_for_both_groups():
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert set(project["entry-points"]) == {"trainlab.workloads", "trainlab.algorithms"}


def test_plugin_names_listed(plugin_env):
    out = trainlab(plugin_env, "list", "workloads", "--json")
    assert out.returncode == 0, out.stderr
    assert "plugin_blobs" in out.stdout
    out = trainlab(plugin_env, "list", "algorithms", "--json")
    assert out.returncode == 0, out.stderr
    assert "plugin_signsgd" in out.stdout


@pytest.mark.parametrize("algorithm", ["plugin_signsgd", "plugin_signsgd+rex"])
def test_plugin_algorithm_runs_on_plugin_workload(plugin_env, tmp_path, algorithm):
    store = tmp_path / "runs.db"
    out = trainlab(
        plugin_env, "run", "-w", "plugin_blobs", "-a", algorithm,
        "--set", "learning_rate=0.01", "--eval-every-steps", "5", "--max-steps", "20",
        "--targets", "class", "--store", str(store), "--quiet", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    result = json.loads(out.stdout)
    assert result["status"] in ("reached", "missed")
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT workload, algorithm, status FROM trials").fetchall()
    assert rows == [("plugin_blobs", algorithm, result["status"])]


@pytest.mark.slow
def test_plugin_benchmark_in_worker_processes(plugin_env, tmp_path):
    """Worker processes (spawned) find the plugin through its entry points too."""
    store = tmp_path / "runs.db"
    out = trainlab(
        plugin_env, "bench", "-w", "plugin_blobs", "-a", "plugin_signsgd,nadamw",
        "--trials", "1", "--studies", "1", "--eval-every-steps", "5", "--max-steps", "20",
        "--targets", "class", "--jobs", "2", "--threads", "1", "--store", str(store), "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    with sqlite3.connect(store) as db:
        statuses = db.execute("SELECT algorithm, status FROM trials ORDER BY algorithm").fetchall()
    assert [a for a, _ in statuses] == ["nadamw", "plugin_signsgd"]
    assert all(s in ("reached", "missed") for _, s in statuses)
