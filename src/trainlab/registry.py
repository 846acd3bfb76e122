"""Name -> workload / algorithm.

Modules under ``trainlab.workloads`` and ``trainlab.algorithms`` register themselves on import
(with :func:`register_workload` / :func:`register_algorithm`); they are imported on first look-up,
so adding a module is enough to add a name. Third-party packages add names through the entry
point groups ``trainlab.workloads`` and ``trainlab.algorithms`` (each entry point is a module
to import). Names the table does not hold are offered to *resolvers*, which build composed
algorithms on demand (e.g. ``lion+rex``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from trainlab.spec import Algorithm, TrainlabError, Workload

_WORKLOADS: dict[str, Callable[..., Workload]] = {}
_ALGORITHMS: dict[str, Callable[[], Algorithm]] = {}
_RESOLVERS: list[Callable[[str], Algorithm | None]] = []
_SUFFIXES: dict[str, Callable[[Algorithm], Algorithm]] = {}
_loaded = False


def register_workload(name: str) -> Callable:
    """Decorator: register a workload class or factory (called with keyword options)."""

    def deco(factory: Callable[..., Workload]) -> Callable[..., Workload]:
        if name in _WORKLOADS and _WORKLOADS[name] is not factory:
            raise ValueError(f"workload {name!r} registered twice")
        _WORKLOADS[name] = factory
        return factory

    return deco


def register_algorithm(name: str, factory: Callable[[], Algorithm] | None = None) -> Callable:
    """Register an algorithm factory; usable as a decorator or called directly."""

    def deco(f: Callable[[], Algorithm]) -> Callable[[], Algorithm]:
        if name in _ALGORITHMS and _ALGORITHMS[name] is not f:
            raise ValueError(f"algorithm {name!r} registered twice")
        _ALGORITHMS[name] = f
        return f

    return deco(factory) if factory is not None else deco


def register_resolver(resolver: Callable[[str], Algorithm | None]) -> None:
    """Add a function that builds an algorithm from a name the table lacks, or returns None."""
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def register_suffix(suffix: str, wrap: Callable[[Algorithm], Algorithm]) -> None:
    """Make ``NAME+suffix`` resolve to ``wrap(get_algorithm(NAME))`` for any algorithm name,
    composed ones included (``lion+rex+bf16``)."""
    _SUFFIXES[suffix] = wrap


def _import_package_modules(package: str) -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def load_all() -> None:
    """Import every built-in workload and algorithm module, then the plugins."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    _import_package_modules("trainlab.workloads")
    _import_package_modules("trainlab.algorithms")
    for group in ("trainlab.workloads", "trainlab.algorithms"):
        for ep in entry_points(group=group):
            ep.load()


def workload_names() -> list[str]:
    load_all()
    return sorted(_WORKLOADS)


def algorithm_names() -> list[str]:
    load_all()
    return sorted(_ALGORITHMS)


def get_workload(name: str, variant: str | None = None, **options: Any) -> Workload:
    """Build workload ``name`` (optionally ``name:variant``, or ``variant=``) with its class
    values; the benchmark resolves the target and budgets it is measured against
    (:func:`trainlab.workloads.targets.resolve_spec`) and applies them with ``with_spec``."""
    load_all()
    if ":" in name and variant is None:
        name, variant = name.split(":", 1)
    if name not in _WORKLOADS:
        raise TrainlabError(f"unknown workload {name!r}; known: {', '.join(sorted(_WORKLOADS))}")
    workload = _WORKLOADS[name](**options)
    return workload.variant(variant) if variant else workload


def get_algorithm(name: str) -> Algorithm:
    load_all()
    if name in _ALGORITHMS:
        return _ALGORITHMS[name]()
    base, plus, suffix = name.rpartition("+")
    if plus and suffix in _SUFFIXES:  # a wrapper around any algorithm, e.g. ``swa+bf16``
        return _SUFFIXES[suffix](get_algorithm(base))
    for resolve in _RESOLVERS:
        algorithm = resolve(name)
        if algorithm is not None:
            return algorithm
    raise TrainlabError(
        f"unknown algorithm {name!r}; known: {', '.join(sorted(_ALGORITHMS))} "
        "(or OPTIMIZER+SCHEDULE, see `trainlab list algorithms`)"
    )
