"""AlgoPerf's search-space JSON, read into trainlab's :class:`~trainlab.search_space.SearchSpace`.

AlgoPerf (``submission_runner.py --tuning_search_space FILE``) accepts two forms:

* a dict ``{"name": {"min": a, "max": b, "scaling": "log" | "linear"}}`` or
  ``{"name": {"feasible_points": [v1, v2, ...]}}``: external tuning draws quasirandom (Halton)
  points from it. Here a range becomes a float :class:`Param` (log-scaled for ``"log"``), a
  feasible-points list a choice; the default, used by a single ``run``, is the range's midpoint
  (the geometric mean on a log scale) or the first feasible point, choices AlgoPerf leaves open.
* a list ``[{"name": value, ...}, ...]`` of fixed points (AlgoPerf's fixed-space option): trial
  ``i`` of every study runs point ``i``. Each name becomes a choice whose ``choices`` are the
  points' values in order, so the space's JSON (and the benchmark's fingerprint) keeps them.

``--hparams FILE`` holds one point (``{"name": value}``): each number becomes a range of one
value (so ``--set`` may leave it, with a warning), anything else a one-value choice.

Torch-free: the command line's argument types parse files with it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from trainlab.errors import TrainlabError
from trainlab.search_space import Param, SearchSpace

__all__ = ["SpaceFile", "read_hparams", "read_search_space"]


class SpaceFile:
    """A parsed search-space file: the space, and the fixed points of the list form (else
    ``None``). ``path`` is absolute."""

    def __init__(self, path: Path, space: SearchSpace, points: list[dict[str, Any]] | None):
        self.path = path
        self.space = space
        self.points = points


def _load_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainlabError(f"{what} {path}: cannot read it ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainlabError(f"{what} {path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_name(where: str, name: str) -> None:
    if not name.isidentifier() or name.startswith("_"):
        raise TrainlabError(f"{where}: {name!r} is not a hyperparameter name (a Python "
                            "identifier, not starting with _)")  # fmt: skip


def _range_param(where: str, name: str, entry: dict[str, Any]) -> Param:
    unknown = sorted(set(entry) - {"min", "max", "scaling"})
    if unknown:
        raise TrainlabError(f"{where}: {name}: unknown key {unknown[0]!r}")
    low, high, scaling = entry.get("min"), entry.get("max"), entry.get("scaling", "linear")
    if not (_number(low) and _number(high)) or not (math.isfinite(low) and math.isfinite(high)):
        raise TrainlabError(f"{where}: {name}: min and max must be finite numbers")
    if low > high:
        raise TrainlabError(f"{where}: {name}: min {low} > max {high}")
    if scaling not in ("log", "linear"):
        raise TrainlabError(f"{where}: {name}: scaling must be 'log' or 'linear', got {scaling!r}")
    log = scaling == "log"
    if log and low <= 0:
        raise TrainlabError(f"{where}: {name}: a log scaling needs min > 0, got {low}")
    default = math.sqrt(low * high) if log else (low + high) / 2
    return Param(name, float(default), float(low), float(high), log=log, help="AlgoPerf range")


def _choice_param(where: str, name: str, values: list[Any]) -> Param:
    if not isinstance(values, list) or not values:
        raise TrainlabError(f"{where}: {name}: feasible_points must be a non-empty list")
    for v in values:
        if not (_number(v) or isinstance(v, str | bool)) or (_number(v) and not math.isfinite(v)):
            raise TrainlabError(f"{where}: {name}: feasible point {v!r} is not a number, "
                                "string or boolean")  # fmt: skip
    return Param(name, values[0], kind="choice", choices=tuple(values))


def parse_search_space(data: Any, where: str) -> tuple[SearchSpace, list[dict] | None]:
    """``(space, points)`` from AlgoPerf's JSON (dict or list form, see the module); ``where``
    prefixes the one-line :class:`TrainlabError` a malformed space raises."""
    if isinstance(data, dict):
        if not data:
            raise TrainlabError(f"{where}: the search space is empty")
        params = []
        for name, entry in data.items():
            _check_name(where, name)
            if not isinstance(entry, dict):
                raise TrainlabError(f"{where}: {name}: expected {{'min', 'max', 'scaling'}} "
                                    "or {'feasible_points': [...]}")  # fmt: skip
            if "feasible_points" in entry:
                if len(entry) > 1:
                    raise TrainlabError(f"{where}: {name}: feasible_points takes no other key")
                params.append(_choice_param(where, name, entry["feasible_points"]))
            else:
                params.append(_range_param(where, name, entry))
        return SearchSpace(tuple(params)), None
    if isinstance(data, list):
        if not data or not all(isinstance(p, dict) and p for p in data):
            raise TrainlabError(f"{where}: a list search space must hold non-empty "
                                "{name: value} points")  # fmt: skip
        names = list(data[0])
        for name in names:
            _check_name(where, name)
        for k, point in enumerate(data):
            if sorted(point) != sorted(names):
                raise TrainlabError(f"{where}: point {k} names {sorted(point)}, point 0 names "
                                    f"{sorted(names)}")  # fmt: skip
        params = tuple(_choice_param(where, n, [p[n] for p in data]) for n in names)
        return SearchSpace(params), [dict(p) for p in data]
    raise TrainlabError(f"{where}: expected a JSON object or a list of points")


def read_search_space(path: str | Path) -> SpaceFile:
    """Read and check ``--tuning-search-space FILE``; errors name the file."""
    path = Path(path).resolve()
    data = _load_json(path, "--tuning-search-space")
    space, points = parse_search_space(data, f"--tuning-search-space {path}")
    return SpaceFile(path, space, points)


def read_hparams(path: str | Path) -> SpaceFile:
    """Read and check ``--hparams FILE`` (one point ``{"name": value}``) as a space whose
    defaults are the point."""
    path = Path(path).resolve()
    where = f"--hparams {path}"
    data = _load_json(path, "--hparams")
    if not isinstance(data, dict) or not data:
        raise TrainlabError(f"{where}: expected a non-empty JSON object {{name: value}}")
    params = []
    for name, value in data.items():
        _check_name(where, name)
        if _number(value) and math.isfinite(value):
            kind = "int" if isinstance(value, int) else "float"
            params.append(Param(name, value, value, value, kind=kind, help="--hparams value"))
        elif isinstance(value, str | bool):
            params.append(Param(name, value, kind="choice", choices=(value,)))
        else:
            raise TrainlabError(f"{where}: {name}: {value!r} is not a finite number, string "
                                "or boolean")  # fmt: skip
    return SpaceFile(path, SearchSpace(tuple(params)), [dict(data)])
