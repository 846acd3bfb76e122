"""How a benchmark searches its hyperparameter points (``--search``).

* ``halton`` (default): every Halton point trained to the full budget, independently.
* ``asha`` (:mod:`trainlab.bench.asha`): successive halving over rungs of budgets; promotions
  are rows added by the claim.
* ``pbt`` (:mod:`trainlab.bench.pbt`): Population Based Training; a member's segments are rows
  added by the claim, each resuming a checkpoint.

This module holds what the benchmark asks of a searcher: its settings' checks, its part of the
fingerprint, the checks of each algorithm before anything is stored, the planned rows, and the
claim that adds rows (:meth:`~trainlab.bench.store.Store.claim_or_add`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.bench import asha, pbt
from trainlab.errors import TrainlabError

#: the searchers of ``--search``
SEARCHERS = ("halton", "asha", "pbt")
#: the configuration fields of each searcher beyond ``search`` (dropped from stored options
#: when another searcher is used, so older benchmarks keep their options)
FIELDS = {"asha": ("eta", "asha_rungs"),
          "pbt": ("population", "pbt_ready", "pbt_quantile", "pbt_resample")}  # fmt: skip


def check(config: Any) -> None:
    """Raise :class:`TrainlabError` for a bad searcher setting of a ``BenchmarkConfig``."""
    if config.search not in SEARCHERS:
        raise TrainlabError(f"unknown --search {config.search!r}; choose one of "
                            f"{', '.join(SEARCHERS)}")  # fmt: skip
    if config.search == "halton":
        return
    if config.ruleset != "external":
        raise TrainlabError(f"--search {config.search} searches the external-tuning ruleset's "
                            f"points; it has nothing to search under --ruleset "
                            f"{config.ruleset}")  # fmt: skip
    if config.search == "asha":
        asha.check_eta(config.eta)
        return
    pbt.check_options(n_points(config), config.pbt_ready, config.pbt_quantile,
                      config.pbt_resample)  # fmt: skip
    if config.early_stop != "none":
        raise TrainlabError("--early-stop applies to --search halton and asha (a PBT member "
                            "is not stopped on a prediction: it exploits)")  # fmt: skip
    if config.nproc > 1:
        raise TrainlabError("--search pbt runs each segment in one process: drop --nproc")


def options(config: Any, out: dict[str, Any]) -> None:
    """Drop from stored options ``out`` the fields of the searchers not used."""
    for searcher, names in FIELDS.items():
        if config.search != searcher:
            for name in names:
                out.pop(name, None)
    if config.search == "halton":
        out.pop("search", None)


def n_points(config: Any) -> int:
    """Hyperparameter points per study: PBT's population, else ``--trials``."""
    if config.search == "pbt" and config.population is not None:
        return config.population
    return config.n_trials


def resolved(config: Any) -> dict[str, Any] | None:
    """The searcher's part of the benchmark's fingerprint (``None`` for halton)."""
    if config.search == "asha":
        return {"searcher": "asha", "eta": config.eta, "rungs": config.asha_rungs}
    if config.search == "pbt":
        return {"searcher": "pbt", "population": n_points(config), "ready": config.pbt_ready,
                "quantile": config.pbt_quantile, "resample": config.pbt_resample}  # fmt: skip
    return None


def check_algorithm(config: Any, name: str, algorithm: Any) -> None:
    """What the searcher needs of an algorithm, checked before anything is stored."""
    if config.search != "pbt":
        return
    if getattr(algorithm, "fixed_points", None):
        raise TrainlabError(f"{name} runs a fixed list of points: --search pbt has no search "
                            "space to explore")  # fmt: skip
    algorithm.check_checkpoints()
    pbt.check_space(name, algorithm.search_space)


def plan_rows(config: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned (full-budget Halton) rows as the searcher starts them."""
    if config.search == "asha":
        return asha.plan_rows(rows, config.eta, config.asha_rungs)
    if config.search == "pbt":
        return pbt.plan_rows(rows, config.seed, config.pbt_ready, config.pbt_quantile,
                             config.pbt_resample)  # fmt: skip
    return rows


def claimer(store: Any, benchmark_id: int, config: Any) -> Callable[[], int | None] | None:
    """The claim of a searcher that adds rows (``None``: plain claims in plan order)."""
    if config.search == "asha":
        return lambda: store.claim_or_add(benchmark_id, asha.promotion)
    if config.search != "pbt":
        return None
    from trainlab.registry import get_algorithm

    spaces = {name: get_algorithm(name).search_space for name in config.algorithms}
    held = {name: set(config.hyperparameters.get(name) or {}) for name in config.algorithms}

    def choose(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        last = {r["id"]: (r["last_metrics"] or {}).get(r["target_metric"])
                for r in rows if r.get("last_metrics")}  # fmt: skip
        return pbt.next_segment(rows, last, spaces, held)

    return lambda: store.claim_or_add(benchmark_id, choose, last_metrics=True)


def describe(search: dict[str, Any] | None) -> str:
    """A trial's place in its searcher, for ``trainlab show``: ``r1/3`` (ASHA rung 1 of 3),
    ``m2 g3`` (PBT member 2, generation 3), ``-`` otherwise."""
    search = search or {}
    if search.get("searcher") == "asha":
        return f"r{search['rung']}/{search['rungs']}"
    if search.get("searcher") == "pbt":
        return f"m{search['member']} g{search['generation']}"
    return "-"


def detail_lines(search: dict[str, Any] | None) -> list[str]:
    """What ``trainlab show ID`` says of a trial's place in its searcher (none for Halton)."""
    search = search or {}
    if search.get("searcher") == "asha":
        parent = search.get("parent")
        return [f"ASHA rung {search['rung']} of 0-{search['rungs'] - 1} (eta {search['eta']})"
                + (f", promoted from trial {parent}" if parent is not None else "")]
    if search.get("searcher") == "pbt":
        parent, copied = search.get("parent"), search.get("exploited")
        start = ("from scratch" if parent is None else f"from trial {parent}'s checkpoint"
                 + (f" (member {copied}'s: exploited, then explored)" if copied is not None
                    else ""))  # fmt: skip
        return [f"PBT member {search['member']}, generation {search['generation']}: steps "
                f"{search['start_step']}-{search['end_step']}, {start}; its steps, timed and "
                "CPU seconds count along the lineage, its wall and eval seconds are its own"]
    return []
