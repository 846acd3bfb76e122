"""Where a trial's target and budgets come from: ``--targets tuned|class|PATH``.

* ``tuned`` (the default): ``targets.json`` shipped beside this module, written by
  ``trainlab targets`` (AlgoPerf's target-setting procedure) and committed with its command,
  machine and reruns. A workload (or held-out variant) without an entry there uses its class
  values, and the spec's ``source`` says so.
* ``class``: each workload module's own quick-look values (what ``make demo`` uses).
* a path: a targets file of the same format, e.g. one written by ``trainlab targets -o``.

An entry (keyed by ``name`` or ``name:variant``) sets the target value (and metric and
direction), ``max_runtime`` and ``step_hint``. Resolution happens once, when a run or a
benchmark is planned (:func:`resolve_spec`); the result is stored with every trial and passed
to the worker explicitly. No environment variable and no global state chooses targets.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from trainlab.spec import Target, TrainlabError, Workload, WorkloadSpec, eval_period_for

TARGETS_FILE = Path(__file__).with_name("targets.json")
SOURCES = ("tuned", "class")


def check_source(source: str) -> str:
    """``tuned``, ``class`` or an existing, readable targets file; else a one-line error."""
    if source in SOURCES:
        return source
    path = Path(source)
    if not path.is_file():
        raise TrainlabError(
            f"--targets {source}: no such file (use tuned, class or a targets JSON file)"
        )
    load_targets(path)  # malformed files fail here, at the door
    return source


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise TrainlabError(f"cannot read targets file {path}: {exc}") from None
    entries = data.get("workloads") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
        raise TrainlabError(f"targets file {path}: expected an object with a 'workloads' object")
    return entries


def load_targets(path: str | Path = TARGETS_FILE) -> dict[str, dict[str, Any]]:
    """The entries of a targets file (``{}`` when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    return _load(str(path), path.stat().st_mtime)


def spec_from_entry(workload: Workload, entry: dict[str, Any], source: str) -> WorkloadSpec:
    """The class spec of ``workload`` with the values of a targets-file entry."""
    base = workload.class_spec()
    try:
        target = Target(
            str(entry.get("metric", base.target.metric)),
            float(entry.get("value", base.target.value)),
            bool(entry.get("higher_is_better", base.target.higher_is_better)),
        )
        max_runtime = float(entry.get("max_runtime") or base.max_runtime)
        step_hint = int(entry.get("step_hint") or base.step_hint)
    except (TypeError, ValueError) as exc:
        raise TrainlabError(f"targets file: bad entry for {workload.full_name}: {exc}") from None
    return WorkloadSpec(
        target=target,
        max_runtime=max_runtime,
        eval_period=eval_period_for(max_runtime, workload.eval_period),
        step_hint=step_hint,
        source=source,
    )


def resolve_spec(workload: Workload, source: str = "tuned") -> WorkloadSpec:
    """The full-budget spec of ``workload`` under a target source (see the module doc)."""
    if source == "class":
        return workload.class_spec()
    path = TARGETS_FILE if source == "tuned" else Path(check_source(source))
    entry = load_targets(path).get(workload.full_name)
    if not entry:
        return workload.class_spec()  # source "class": no tuned value exists for it
    return spec_from_entry(workload, entry, source if source == "tuned" else str(path))


def write_entries(entries: dict[str, dict[str, Any]], path: str | Path, **header: Any) -> Path:
    """Merge ``entries`` into the targets file at ``path`` (other workloads' entries are kept)
    and write it atomically."""
    path = Path(path)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            raise TrainlabError(
                f"targets file {path} is not valid JSON; fix or remove it"
            ) from None
    data.update(header)
    data.setdefault("workloads", {}).update(entries)
    data["workloads"] = dict(sorted(data["workloads"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
